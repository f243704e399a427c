// Snapshots on the real /dev/kvm: vCPU state round trips, what the backend cannot save, and the
// determinism proof (snapshot a long computation at random points, restore it in a fresh Machine,
// 100 times: the output is bit-identical to an uninterrupted run). Skipped without /dev/kvm.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <mutex>
#include <random>
#include <thread>

#include "cpumodel/migrate/snapshot.h"
#include "cpumodel/vmm/guest_abi.h"
#include "cpumodel/vmm/hold.h"
#include "cpumodel/vmm/kvm.h"
#include "cpumodel/vmm/machine.h"
#include "cpumodel/vmm/qmp.h"
#include "cpumodel/vmm/snapshot.h"
#include "cpumodel/vmm/vcpu_state.h"

extern "C" const uint8_t snapshot_guest_begin[], snapshot_guest_end[];
extern char** environ;

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
  // Called in the vCPU thread after each value, outside the lock (index, values of that vCPU).
  std::function<void(unsigned, size_t)> after;
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
      size_t n;
      {
        std::lock_guard<std::mutex> lock(mu);
        values[index].push_back(v);
        n = values[index].size();
        cv.notify_all();
      }
      if (after) after(index, n);
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
// wrote 1 more checkpoint (so every cycle makes progress whatever the host's load), plus a
// random 0-200 us, so the vCPUs stop anywhere in their loops, at I/O exits or between them.
std::vector<std::vector<uint32_t>> interrupted(unsigned vcpus, uint64_t iterations, bool irqchip, int cycles,
                                               unsigned seed, int* done_cycles) {
  std::string dir = temp_dir();
  std::string path = dir + "/guest.snap";
  Output out(vcpus);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> delay_us(0, 200);
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
      out.wait_for(0, out.count(0) + 1, ended);
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
    // What KVM_GET_CPUID2 returns against what KVM_SET_CPUID2 was given (kvm_pvm: the host's bits
    // in leaves 1, 7 and 0DH, as its guests see them).
    auto diffs = kvm_table().diff(state->vcpus[0].cpuid);
    std::printf("  KVM_GET_CPUID2 differs from the table set in %zu registers\n", diffs.size());
    for (size_t k = 0; k < diffs.size() && k < 6; ++k)
      std::printf("    %s.%u %s: set %08x, got %08x\n", leaf_label(diffs[k].key.leaf).c_str(), diffs[k].key.subleaf,
                  reg_name(diffs[k].reg), diffs[k].left, diffs[k].right);
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
  const uint64_t iterations = 512 * 64;  // 512 checkpoints per vCPU: room for 100 cycles on a loaded host
  double ref_ms = 0;
  auto want = reference(2, iterations, false, &ref_ms);
  ASSERT_EQ(want.size(), 2u);
  ASSERT_EQ(want[0].size(), 513u);
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

// Snapshots taken exactly at an I/O exit: vCPU 0's checkpoint handler holds the vCPU in user space
// until the pause has been requested, so the vCPU parks with its `out` not yet completed by KVM
// (KVM finishes it, advancing RIP, on the next KVM_RUN). The pause must complete it first (an
// immediate_exit KVM_RUN); otherwise the restored guest would run the `out` again and write that
// checkpoint twice.
TEST(SnapshotKvm, SnapshotsAtAnIoExitCompleteTheInstructionFirst) {
  REQUIRE_KVM();
  const uint64_t iterations = 64 * 64;
  auto want = reference(1, iterations, false);
  std::string dir = temp_dir();
  std::string path = dir + "/io.snap";
  Output out(1);
  std::atomic<size_t> stop_at{0};
  std::atomic<bool> at_exit{false};
  out.after = [&](unsigned index, size_t n) {
    if (index != 0 || n != stop_at.load()) return;
    at_exit = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the pause is requested meanwhile
  };
  auto m = boot(1, iterations, false, out);
  ASSERT_TRUE(m);
  for (int cycle = 0; cycle < 20; ++cycle) {
    stop_at = out.count(0) + 2;
    at_exit = false;
    Result<MachineReport> rep = input_error("not run");
    std::thread runner([&] { rep = m->run(); });
    while (!at_exit.load()) std::this_thread::sleep_for(std::chrono::microseconds(50));
    ASSERT_TRUE(snapshot_machine(*m, path, info(), AfterSnapshot::kStop).ok());
    runner.join();
    ASSERT_TRUE(rep.ok() && !rep->all_done());
    RestoreOptions ro;
    ro.on_io = out.handler();
    auto r = restore_machine(path, ro);
    ASSERT_TRUE(r.ok()) << r.error().message;
    m = std::move(r->machine);
  }
  auto rep = m->run();
  ASSERT_TRUE(rep.ok() && rep->all_done());
  out.values[0].push_back(rep->vcpus[0].done_value);
  EXPECT_TRUE(out.values == want) << "a checkpoint was lost or written twice across a snapshot at an I/O exit";
  std::filesystem::remove_all(dir);
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

// `cpumodel` as a child process with stdout to a file; returns its pid.
pid_t spawn(const std::vector<std::string>& args, const std::string& out_file) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> argv;
  std::string bin = CPUMODEL_BINARY;
  argv.push_back(bin.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  int err = posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  EXPECT_EQ(err, 0) << bin;
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int run_cli(const std::vector<std::string>& args, std::string* out) {
  std::string file = temp_dir() + "/cli.out";
  int rc = wait_exit(spawn(args, file));
  std::ifstream in(file);
  *out = std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return rc;
}

// "vcpu N: 0x12345678" and "vcpu N: done 0x12345678" lines of `cpumodel restore`.
void parse_restore(const std::string& text, std::vector<std::vector<uint32_t>>& into) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    unsigned n = 0, v = 0;
    if (std::sscanf(line.c_str(), "vcpu %u: done 0x%x", &n, &v) == 2 || std::sscanf(line.c_str(), "vcpu %u: 0x%x", &n, &v) == 2)
      if (n < into.size()) into[n].push_back(v);
  }
}

size_t lines_in(const std::string& file) {
  std::ifstream in(file);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

// Snapshot in this process; `cpumodel restore --qmp` in a second process continues the guest and
// is snapshotted again through QMP snapshot-save (quit); `cpumodel restore` in a third process
// finishes it. The three outputs together are the uninterrupted run's. On the way: `state inspect`
// reads the file, and migrate-check --state says ok for this host (and the resume then works: the
// "false ok" hunt) and not ok for a host whose TSC differs.
TEST(SnapshotKvm, ResumesAcrossFreshProcessesThroughTheCliAndQmp) {
  REQUIRE_KVM();
  if (::access(CPUMODEL_BINARY, X_OK) != 0) GTEST_SKIP() << CPUMODEL_BINARY << " not built";
  const uint64_t iterations = 256 * 64;
  auto want = reference(2, iterations, false);
  std::string dir = temp_dir();
  std::string a = dir + "/a.snap", b = dir + "/b.snap", qmp = "unix:" + dir + "/qmp.sock";
  Output out(2);
  auto m = boot(2, iterations, false, out);
  ASSERT_TRUE(m);
  Result<MachineReport> rep = input_error("not run");
  std::atomic<bool> ended{false};
  std::thread runner([&] { rep = m->run(); ended = true; });
  out.wait_for(0, 5, ended);
  SnapshotInfo two_sockets = info();  // a topology for the header: restore's QMP places vCPUs by it
  two_sockets.cpus = two_sockets.maxcpus = two_sockets.sockets = 2;
  two_sockets.dies = two_sockets.cores = two_sockets.threads = 1;
  two_sockets.smp = "2,maxcpus=2,sockets=2,dies=1,cores=1,threads=1";
  ASSERT_TRUE(snapshot_machine(*m, a, two_sockets, AfterSnapshot::kStop).ok());
  runner.join();
  ASSERT_TRUE(rep.ok());
  ASSERT_FALSE(rep->all_done()) << "the guest ended before the first snapshot";
  std::vector<std::vector<uint32_t>> got = out.values;

  std::string text;
  ASSERT_EQ(run_cli({"state", "inspect", a, "--json"}, &text), 0) << text;
  EXPECT_NE(text.find("\"mode\": \"64-bit long mode\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"msr_count\""), std::string::npos) << text;
  ASSERT_EQ(run_cli({"host", "--save", dir + "/here.yaml"}, &text), 0) << text;
  EXPECT_EQ(run_cli({"migrate-check", "--state", a, "--to", dir + "/here.yaml"}, &text), 0) << text;
  std::string gold = std::string(CPUMODEL_SHARED_DIR) + "/data/cpuid-dumps/x86_64-cpuid-Xeon-Gold-6148.xml";
  EXPECT_EQ(run_cli({"migrate-check", "--state", a, "--to", gold, "--json"}, &text), 1) << text;
  EXPECT_NE(text.find("TSC: "), std::string::npos) << text;

  std::string b_out = dir + "/b.out";
  pid_t pid = spawn({"restore", a, "--qmp", qmp}, b_out);
  for (int i = 0; i < 500 && lines_in(b_out) < 40; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  // `cpumodel vcpus` on the restored guest: each vCPU's live thread, placed by the saved topology.
  ASSERT_EQ(run_cli({"vcpus", "--qmp", qmp}, &text), 0) << text;
  std::istringstream rows(text);
  std::string header;
  std::getline(rows, header);
  for (unsigned v = 0; v < 2; ++v) {
    unsigned index = 99, socket = 99, die = 99, core = 99, thread = 99;
    long tid = 0;
    rows >> index >> tid >> socket >> die >> core >> thread;
    rows.ignore(1000, '\n');
    EXPECT_EQ(index, v) << text;
    EXPECT_GT(tid, 0) << text;
    EXPECT_EQ(socket, v) << text;
    EXPECT_EQ(core, 0u) << text;
  }
  auto saved = qmp_execute(qmp, "snapshot-save", "{\"path\": \"" + b + "\", \"quit\": true}", 10);
  EXPECT_TRUE(saved.ok()) << saved.error().message;
  EXPECT_EQ(wait_exit(pid), 0);
  // The snapshot of the restored guest keeps the topology.
  ASSERT_EQ(run_cli({"state", "inspect", b, "--json"}, &text), 0) << text;
  EXPECT_NE(text.find("\"smp\": \"2,maxcpus=2,sockets=2,dies=1,cores=1,threads=1\""), std::string::npos) << text;
  std::ifstream bin(b_out);
  parse_restore(std::string((std::istreambuf_iterator<char>(bin)), std::istreambuf_iterator<char>()), got);
  ASSERT_EQ(run_cli({"restore", b, "--no-verify-memory"}, &text), 0) << text;
  parse_restore(text, got);
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].size(), want[i].size()) << "vCPU " << i;
    EXPECT_TRUE(got[i] == want[i]) << "vCPU " << i << ": output across three processes differs";
  }
  std::filesystem::remove_all(dir);
}

std::vector<std::string> hex_lines(const std::string& file) {
  std::vector<std::string> out;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);)
    if (line.size() == 8 && line.find_first_not_of("0123456789abcdef") == std::string::npos) out.push_back(line);
  return out;
}

// verify --hold's guest, snapshotted through QMP snapshot-save (quit) and resumed by `cpumodel
// restore` in another process: the serial output goes on exactly as the uninterrupted run's.
TEST(SnapshotKvm, HoldGuestSnapshotThroughQmpResumesItsSerialOutput) {
  REQUIRE_KVM();
  if (::access(CPUMODEL_BINARY, X_OK) != 0) GTEST_SKIP() << CPUMODEL_BINARY << " not built";
  std::string dir = temp_dir();
  GuestCpuid guest;
  guest.tables = {kvm_table(), kvm_table()};
  guest.vcpus = {VcpuPlace{0, 0}, VcpuPlace{1, 1}};
  auto serial = [](const std::string& file) { return ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644); };
  HoldOptions o;
  o.iterations = 16 * 1024;  // 16 lines from vCPU 0
  o.serial_fd = serial(dir + "/ref.out");
  auto ref = run_hold(guest, o);
  ::close(o.serial_fd);
  ASSERT_TRUE(ref.ok() && ref->all_done()) << (ref.ok() ? ref->failure() : ref.error().message);
  auto want = hex_lines(dir + "/ref.out");
  ASSERT_EQ(want.size(), 16u);

  o.serial_fd = serial(dir + "/a.out");
  o.qmp = "unix:" + dir + "/hold.sock";
  Result<MachineReport> held = input_error("not run");
  std::thread runner([&] { held = run_hold(guest, o); });
  for (int i = 0; i < 1000 && hex_lines(dir + "/a.out").size() < 4; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto saved = qmp_execute(o.qmp, "snapshot-save", "{\"path\": \"" + dir + "/h.snap\", \"quit\": true}", 10);
  runner.join();
  ::close(o.serial_fd);
  ASSERT_TRUE(saved.ok()) << saved.error().message;
  ASSERT_TRUE(held.ok()) << held.error().message;
  std::string text;
  ASSERT_EQ(run_cli({"restore", dir + "/h.snap"}, &text), 0) << text;
  auto got = hex_lines(dir + "/a.out");
  size_t before = got.size();
  std::ofstream(dir + "/b.out") << text;
  for (const auto& l : hex_lines(dir + "/b.out")) got.push_back(l);
  EXPECT_GE(before, 4u);
  EXPECT_LT(before, want.size()) << "the snapshot was taken before the end";
  EXPECT_EQ(got, want);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cpumodel::vmm
