// Snapshots on the real /dev/kvm: vCPU state round trips, what the backend cannot save, and the
// determinism proof (snapshot a long computation at random points, restore it in a fresh Machine,
// 100 times: the output is bit-identical to an uninterrupted run). Skipped without /dev/kvm.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "cpumodel/migrate/snapshot.h"
#include "cpumodel/vmm/guest_abi.h"
#include "cpumodel/vmm/kvm.h"
#include "cpumodel/vmm/machine.h"
#include "cpumodel/vmm/snapshot.h"
#include "cpumodel/vmm/vcpu_state.h"

extern "C" const uint8_t snapshot_guest_begin[], snapshot_guest_end[];

namespace cpumodel::vmm {
namespace {

constexpr uint16_t kCheckpointPort = 0x0cf0;  // snapshot_guest.S
// vCPU i's 128 KiB table at kTables + i * kTableSize: in the second 2 MiB page, away from the page
// tables (a shadow MMU write-protects the guest's page-table pages; kvm_pvm then traps and emulates
// every write to the whole 2 MiB page holding them: ~100 us per write, measured).
constexpr uint64_t kTables = 0x200000;
constexpr uint64_t kTableSize = 0x20000;

bool have_kvm() { return ::access("/dev/kvm", R_OK | W_OK) == 0; }
#define REQUIRE_KVM() \
  if (!have_kvm()) GTEST_SKIP() << "/dev/kvm is missing or not accessible"

CpuidTable kvm_table() {
  auto kvm = Kvm::open();
  EXPECT_TRUE(kvm.ok());
  auto t = kvm->supported_cpuid();
  EXPECT_TRUE(t.ok()) << t.error().message;
  return t.ok() ? *t : CpuidTable{};
}

// SIMD state in the guest (RBP of snapshot_guest.S): SSE (bit 0) and AVX (bit 1), so the XSAVE
// area and XCR0 carry live state. $CPUMODEL_SNAPSHOT_SIMD overrides (kvm_pvm: see the report).
unsigned guest_simd() {
  if (const char* e = std::getenv("CPUMODEL_SNAPSHOT_SIMD")) return static_cast<unsigned>(std::atoi(e));
  auto kvm = Kvm::open();
  return kvm.ok() && kvm->backend() != Backend::kPvm ? 3 : 0;
}

// What the guests wrote to the checkpoint port, per vCPU, across every machine of a run.
struct Output {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::vector<uint32_t>> values;
  explicit Output(unsigned vcpus) : values(vcpus) {}
  size_t count(unsigned vcpu) {
    std::lock_guard<std::mutex> lock(mu);
    return values[vcpu].size();
  }
  // Until vCPU `vcpu` has written `n` checkpoints or `stop` is set.
  void wait_for(unsigned vcpu, size_t n, const std::atomic<bool>& stop) {
    std::unique_lock<std::mutex> lock(mu);
    while (values[vcpu].size() < n && !stop.load()) cv.wait_for(lock, std::chrono::milliseconds(5));
  }
  std::function<bool(unsigned, kvm_run&)> handler() {
    return [this](unsigned index, kvm_run& run) {
      if (run.io.port != kCheckpointPort || run.io.direction != KVM_EXIT_IO_OUT || run.io.size != 4) return false;
      uint32_t v;
      std::memcpy(&v, reinterpret_cast<uint8_t*>(&run) + run.io.data_offset, 4);
      std::lock_guard<std::mutex> lock(mu);
      values[index].push_back(v);
      cv.notify_all();
      return true;
    };
  }
};

MachineConfig guest_config(unsigned vcpus, uint64_t iterations, bool irqchip, Output& out) {
  MachineConfig c;
  c.ram_size = 4ull << 20;
  c.timeout_s = 0;
  c.irqchip = irqchip;
  c.on_io = out.handler();
  CpuidTable table = kvm_table();
  for (unsigned i = 0; i < vcpus; ++i) {
    VcpuConfig vc;
    vc.apic_id = i;
    vc.cpuid = table;
    vc.rdi = iterations;
    vc.rsi = kTables + i * kTableSize;
    vc.rdx = 0x243F6A8885A308D3ull + i;
    vc.rsp = 0x8000;
    vc.rbp = guest_simd();
    c.vcpus.push_back(std::move(vc));
  }
  return c;
}

std::unique_ptr<Machine> boot(unsigned vcpus, uint64_t iterations, bool irqchip, Output& out) {
  auto m = Machine::create(guest_config(vcpus, iterations, irqchip, out));
  EXPECT_TRUE(m.ok()) << m.error().message;
  if (!m) return nullptr;
  auto code = std::span<const uint8_t>(snapshot_guest_begin, static_cast<size_t>(snapshot_guest_end - snapshot_guest_begin));
  EXPECT_TRUE((*m)->load_code(code).ok());
  return std::move(*m);
}

std::string temp_dir() {
  std::string d = std::filesystem::temp_directory_path() / ("cpumodel-snap-" + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return d;
}

SnapshotInfo info() {
  SnapshotInfo i;
  i.tool_version = "test";
  i.cpu_spec = "host";
  i.cpu_model = "kvm-supported";
  i.guest = "determinism test";
  return i;
}

// The uninterrupted run: every checkpoint and the final value of each vCPU.
std::vector<std::vector<uint32_t>> reference(unsigned vcpus, uint64_t iterations, bool irqchip, double* ms = nullptr) {
  Output out(vcpus);
  auto m = boot(vcpus, iterations, irqchip, out);
  if (!m) return {};
  auto rep = m->run();
  EXPECT_TRUE(rep.ok());
  EXPECT_TRUE(rep->all_done()) << rep->failure();
  if (ms) *ms = rep->run_ms;
  for (unsigned i = 0; i < vcpus; ++i) out.values[i].push_back(rep->vcpus[i].done_value);
  return out.values;
}

// Runs the guest, snapshotting it at random points and restoring each snapshot in a fresh Machine,
// `cycles` times, then lets it finish. Returns the output as the reference's. A point: after vCPU 0
// wrote 1 or 2 more checkpoints (so every cycle makes progress whatever the host's load), plus a
// random 0-300 us, so the vCPUs stop anywhere in their loops, at I/O exits or between them.
std::vector<std::vector<uint32_t>> interrupted(unsigned vcpus, uint64_t iterations, bool irqchip, int cycles,
                                               unsigned seed, int* done_cycles) {
  std::string dir = temp_dir();
  std::string path = dir + "/guest.snap";
  Output out(vcpus);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> delay_us(0, 300);
  std::uniform_int_distribution<int> more(1, 2);
  std::unique_ptr<Machine> m = boot(vcpus, iterations, irqchip, out);
  *done_cycles = 0;
  for (int cycle = 0; m; ++cycle) {
    Result<MachineReport> rep = input_error("not run");
    std::atomic<bool> ended{false};
    std::thread runner([&] {
      rep = m->run();
      ended.store(true);
    });
    if (cycle < cycles) {
      out.wait_for(0, out.count(0) + static_cast<size_t>(more(rng)), ended);
      std::this_thread::sleep_for(std::chrono::duration<double, std::micro>(delay_us(rng)));
      auto st = snapshot_machine(*m, path, info(), AfterSnapshot::kStop);
      EXPECT_TRUE(st.ok()) << st.error().message;
    }
    runner.join();
    EXPECT_TRUE(rep.ok());
    if (!rep.ok()) break;
    if (rep->all_done()) {
      for (unsigned i = 0; i < vcpus; ++i) out.values[i].push_back(rep->vcpus[i].done_value);
      break;
    }
    bool stopped = cycle < cycles;
    for (const auto& v : rep->vcpus) {
      EXPECT_TRUE(stopped && (v.end == VcpuEnd::kStopped || v.end == VcpuEnd::kDone))
          << "cycle " << cycle << ", vCPU " << v.index << ": " << v.what << "\n" << v.dump;
      stopped = stopped && (v.end == VcpuEnd::kStopped || v.end == VcpuEnd::kDone);
    }
    if (!stopped) break;
    ++*done_cycles;
    RestoreOptions ro;
    ro.on_io = out.handler();
    ro.verify_memory = cycle % 10 == 0;  // both paths: checked and lazily mapped
    auto r = restore_machine(path, ro);
    EXPECT_TRUE(r.ok()) << "cycle " << cycle << ": " << r.error().message;
    if (!r) break;
    m = std::move(r->machine);
  }
  std::filesystem::remove_all(dir);
  return out.values;
}

TEST(SnapshotKvm, FreshVcpuStateRoundTripsThroughKvmAndTheCodec) {
  REQUIRE_KVM();
  for (bool irqchip : {false, true}) {
    Output out(2);
    auto m = boot(2, 1000, irqchip, out);
    ASSERT_TRUE(m);
    auto state = m->save_state();
    ASSERT_TRUE(state.ok()) << state.error().message;
    ASSERT_EQ(state->vcpus.size(), 2u);
    const VcpuState& v0 = state->vcpus[0];
    EXPECT_EQ(v0.regs.rip, BootLayout::kCode);
    EXPECT_EQ(v0.regs.rdi, 1000u);
    EXPECT_EQ(state->vcpus[1].regs.rsi, kTables + kTableSize);
    EXPECT_TRUE(v0.sregs.efer >> 10 & 1) << "long mode active";
    EXPECT_FALSE(v0.cpuid.empty()) << "KVM_GET_CPUID2 gives the table set";
    EXPECT_EQ(v0.cpuid.vendor(), kvm_table().vendor());
    EXPECT_GE(v0.xsave.size(), kXsaveLegacySize);
    EXPECT_TRUE(v0.msr(0x10).has_value()) << "IA32_TSC saved";
    EXPECT_EQ(!v0.lapic.empty(), irqchip) << "the LAPIC exists with the in-kernel irqchip only";
    EXPECT_EQ(state->vm.irqchip, irqchip);
    // Through the codec and back into a new machine: what KVM gives back is what was saved.
    Snapshot snap;
    snap.header.smp = "2";
    snap.state = *state;
    auto decoded = decode_snapshot(encode_snapshot(snap), "mem");
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    Output out2(2);
    MachineConfig c = guest_config(2, 1000, irqchip, out2);
    c.restore = std::make_shared<const MachineState>(decoded->state);
    auto m2 = Machine::create(std::move(c));
    ASSERT_TRUE(m2.ok()) << m2.error().message;
    auto again = (*m2)->save_state();
    ASSERT_TRUE(again.ok()) << again.error().message;
    for (size_t i = 0; i < 2; ++i) {
      const VcpuState &a = state->vcpus[i], &b = again->vcpus[i];
      EXPECT_EQ(0, std::memcmp(&a.regs, &b.regs, sizeof a.regs)) << "vCPU " << i;
      EXPECT_EQ(0, std::memcmp(&a.sregs, &b.sregs, sizeof a.sregs)) << "vCPU " << i;
      EXPECT_EQ(a.xcr0(), b.xcr0());
      EXPECT_EQ(a.cpuid, b.cpuid);
      EXPECT_EQ(a.mp_state, b.mp_state);
      EXPECT_EQ(a.lapic, b.lapic);
      ASSERT_EQ(a.msrs.size(), b.msrs.size());
      for (size_t k = 0; k < a.msrs.size(); ++k) {
        EXPECT_EQ(a.msrs[k].index, b.msrs[k].index);
        if (a.msrs[k].index != 0x10) {
          EXPECT_EQ(a.msrs[k].value, b.msrs[k].value) << describe_msr(a.msrs[k].index);
        }
      }
    }
  }
}

// Which state ioctls this backend refuses, recorded rather than failing (printed for the report).
TEST(SnapshotKvm, UnsupportedStateIsRecordedNotFatal) {
  REQUIRE_KVM();
  for (bool irqchip : {false, true}) {
    Output out(1);
    auto m = boot(1, 1000, irqchip, out);
    ASSERT_TRUE(m);
    auto state = m->save_state();
    ASSERT_TRUE(state.ok()) << state.error().message;
    std::printf("backend %s, irqchip %s: %zu MSRs saved, XSAVE %zu bytes%s\n", backend_name(m->backend()),
                irqchip ? "on" : "off", state->vcpus[0].msrs.size(), state->vcpus[0].xsave.size(),
                state->vcpus[0].xsave2 ? " (KVM_GET_XSAVE2)" : " (KVM_GET_XSAVE)");
    for (const auto& u : state->vcpus[0].unsupported) std::printf("  vCPU: %s\n", u.c_str());
    for (const auto& u : state->vm.unsupported) std::printf("  VM: %s\n", u.c_str());
    std::printf("  PIT %s, kvmclock %s\n", state->vm.pit ? "saved" : "absent", state->vm.clock ? "saved" : "absent");
  }
}

TEST(SnapshotKvm, GuestRunsToTheEndTwiceWithTheSameOutput) {
  REQUIRE_KVM();
  double ms = 0;
  auto a = reference(2, 4096, false, &ms);
  auto b = reference(2, 4096, false);
  std::printf("2 vCPUs x 4096 iterations: %.1f ms\n", ms);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].size(), 65u) << "64 checkpoints and the final value";
  EXPECT_EQ(a, b);
  EXPECT_NE(a[0], a[1]) << "the vCPUs have different seeds";
}

TEST(SnapshotKvm, PausedGuestResumesAndFinishesWithTheSameResult) {
  REQUIRE_KVM();
  auto want = reference(1, 4096, false);
  Output out(1);
  auto m = boot(1, 4096, false, out);
  ASSERT_TRUE(m);
  Result<MachineReport> rep = input_error("not run");
  std::thread runner([&] { rep = m->run(); });
  std::atomic<bool> never{false};
  out.wait_for(0, 10, never);
  std::string dir = temp_dir();
  auto st = snapshot_machine(*m, dir + "/a.snap", info(), AfterSnapshot::kResume);  // save and continue
  ASSERT_TRUE(st.ok()) << st.error().message;
  runner.join();
  ASSERT_TRUE(rep.ok() && rep->all_done()) << (rep.ok() ? rep->failure() : rep.error().message);
  out.values[0].push_back(rep->vcpus[0].done_value);
  EXPECT_EQ(out.values, want) << "snapshot-save and continue must not disturb the guest";
  std::filesystem::remove_all(dir);
}

TEST(SnapshotKvm, DeterminismHundredCyclesOfSnapshotAndRestore) {
  REQUIRE_KVM();
  const unsigned seed = std::getenv("CPUMODEL_SNAPSHOT_SEED") ? std::atoi(std::getenv("CPUMODEL_SNAPSHOT_SEED")) : 8;
  const uint64_t iterations = 256 * 64;  // 256 checkpoints per vCPU; 100 cycles use at most 200
  double ref_ms = 0;
  auto want = reference(2, iterations, false, &ref_ms);
  ASSERT_EQ(want.size(), 2u);
  ASSERT_EQ(want[0].size(), 257u);
  int cycles = 0;
  auto t0 = std::chrono::steady_clock::now();
  auto got = interrupted(2, iterations, false, 100, seed, &cycles);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("uninterrupted run %.1f ms; %d snapshot/restore cycles in %.1f ms (seed %u)\n", ref_ms, cycles, ms, seed);
  EXPECT_EQ(cycles, 100) << "the guest finished before 100 snapshots: lengthen it";
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].size(), want[i].size()) << "vCPU " << i;
    EXPECT_TRUE(got[i] == want[i]) << "vCPU " << i << ": output differs from the uninterrupted run";
  }
}

TEST(SnapshotKvm, DeterminismWithTheInKernelIrqchip) {
  REQUIRE_KVM();
  const uint64_t iterations = 64 * 64;
  auto want = reference(2, iterations, true);
  int cycles = 0;
  auto got = interrupted(2, iterations, true, 10, 3, &cycles);
  EXPECT_EQ(cycles, 10);
  EXPECT_TRUE(got == want) << "output differs from the uninterrupted run";
}

}  // namespace
}  // namespace cpumodel::vmm
