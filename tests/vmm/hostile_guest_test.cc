// Hostile guests (issue 9): guests that triple-fault, halt with interrupts off for ever, spin,
// storm I/O ports, write to or execute from unmapped memory, or make KVM give up on an event
// delivery. For each the VMM must say what happened (exit reason and a register dump), end within
// its timeout, and leave no thread and no fd behind, also across 1,000 runs. Each case prints
// the VMM's report (`[hostile] ...`), which is the matrix in the issue note.
// Skipped (with the reason) where /dev/kvm is missing.
#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cpumodel/vmm/kvm.h"
#include "cpumodel/vmm/machine.h"

extern "C" const uint8_t guest_done_begin[], guest_done_end[], guest_triple_begin[], guest_triple_end[];
extern "C" const uint8_t guest_spin_begin[], guest_spin_end[], guest_mmio_begin[], guest_mmio_end[];
extern "C" const uint8_t guest_port_begin[], guest_port_end[], guest_hlt_begin[], guest_hlt_end[];
extern "C" const uint8_t guest_iostorm_begin[], guest_iostorm_end[], guest_fetch_begin[], guest_fetch_end[];
extern "C" const uint8_t guest_badidt_begin[], guest_badidt_end[], guest_mixed_begin[], guest_mixed_end[];

namespace cpumodel::vmm {
namespace {

using Clock = std::chrono::steady_clock;

#define REQUIRE_KVM() \
  if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is missing or not accessible"

std::span<const uint8_t> code(const uint8_t* b, const uint8_t* e) { return {b, static_cast<size_t>(e - b)}; }

size_t count_entries(const char* dir) {
  size_t n = 0;
  DIR* d = ::opendir(dir);
  if (!d) return 0;
  while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
  ::closedir(d);
  return n;
}
size_t open_fds() { return count_entries("/proc/self/fd"); }
size_t threads() { return count_entries("/proc/self/task"); }
bool thread_exists(pid_t tid) { return ::access(("/proc/self/task/" + std::to_string(tid)).c_str(), F_OK) == 0; }

// A joined thread's /proc/self/task entry can outlive pthread_join for a moment (the kernel wakes
// the joiner before the task is reaped; seen under ASan in CI). So counts are read once they have
// settled: `done` is polled for up to 5 s. True when it held.
bool eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 500; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}
// The thread count once no "vcpu N" thread of an earlier VM is left.
size_t settled_threads() {
  eventually([] {
    DIR* d = ::opendir("/proc/self/task");
    if (!d) return true;
    bool vcpu = false;
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream comm(std::string("/proc/self/task/") + e->d_name + "/comm");
      std::string name;
      std::getline(comm, name);
      vcpu = vcpu || name.rfind("vcpu ", 0) == 0;
    }
    ::closedir(d);
    return !vcpu;
  });
  return threads();
}

// The value of one register in a register_dump ("rbx 00000000000004d2").
uint64_t dump_reg(const std::string& dump, const std::string& reg) {
  size_t p = dump.find(reg + " ");
  if (p == std::string::npos) return ~0ull;
  p = dump.find_first_not_of(' ', p + reg.size());
  return std::stoull(dump.substr(p, 16), nullptr, 16);
}

const CpuidTable& kvm_table() {
  static const CpuidTable table = [] {
    auto kvm = Kvm::open();
    auto t = kvm ? kvm->supported_cpuid() : Result<CpuidTable>(kvm.error());
    return t ? *t : CpuidTable{};
  }();
  return table;
}

// One row of the matrix: the guest, how the VMM runs it, and what it must report.
struct Hostile {
  const char* name;
  std::span<const uint8_t> guest;
  unsigned vcpus = 1;
  bool irqchip = true;
  bool take_io = false;  // on_io accepts ports 0x80/0x81 (the storm goes on until the timeout)
  bool by_timeout = false;
  // The first vCPU that did not finish must end one of these ways, saying `what`.
  std::set<VcpuEnd> ends;
  const char* what;
  const char* rip_prefix = "rip 00000000000080";  // every guest is at BootLayout::kCode (0x8000)
};

struct Outcome {
  MachineReport report;
  double elapsed_s = 0;
  uint64_t io_taken = 0;
};

Outcome run_hostile(const Hostile& h, double timeout_s) {
  MachineConfig config;
  config.timeout_s = timeout_s;
  config.irqchip = h.irqchip;
  Outcome out;
  if (h.take_io)
    config.on_io = [&out](unsigned, kvm_run& run) {
      if (run.io.port != 0x80 && run.io.port != 0x81) return false;
      if (run.io.direction == KVM_EXIT_IO_IN) reinterpret_cast<uint8_t*>(&run)[run.io.data_offset] = 0xff;
      __atomic_add_fetch(&out.io_taken, 1, __ATOMIC_RELAXED);
      return true;
    };
  for (unsigned i = 0; i < h.vcpus; ++i) {
    VcpuConfig vc;
    vc.apic_id = i;
    vc.cpuid = kvm_table();
    vc.rdi = i;
    config.vcpus.push_back(vc);
  }
  auto t0 = Clock::now();
  auto m = Machine::create(std::move(config));
  EXPECT_TRUE(m.ok()) << m.error().message;
  if (!m.ok()) return out;
  EXPECT_TRUE((*m)->load_code(h.guest).ok());
  auto r = (*m)->run();
  EXPECT_TRUE(r.ok()) << r.error().message;
  m->reset();
  out.elapsed_s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (r.ok()) out.report = std::move(*r);
  return out;
}

// The vCPU the report blames (as MachineReport::failure() picks it).
const VcpuReport* blamed(const MachineReport& r) {
  const VcpuReport* first = nullptr;
  for (const auto& v : r.vcpus) {
    if (v.end == VcpuEnd::kDone) continue;
    if (!first || (first->end == VcpuEnd::kStopped && v.end != VcpuEnd::kStopped)) first = &v;
  }
  return first;
}

std::vector<Hostile> matrix(bool irqchip_available) {
  std::set<VcpuEnd> fault = {VcpuEnd::kShutdown, VcpuEnd::kInternalError};
  std::vector<Hostile> m;
  m.push_back({"triple fault", code(guest_triple_begin, guest_triple_end), 1, true, false, false, fault,
               "", "rip 0000000000008000"});
  // With an in-kernel LAPIC KVM blocks the halted vCPU in the kernel: only the timeout's kick
  // ends it. Without one, the hlt exits to the VMM at once.
  if (irqchip_available)
    m.push_back({"hlt, interrupts off, in-kernel irqchip", code(guest_hlt_begin, guest_hlt_end), 1, true, false,
                 true, {VcpuEnd::kTimeout}, "still running at the timeout"});
  m.push_back({"hlt, interrupts off, no irqchip", code(guest_hlt_begin, guest_hlt_end), 1, false, false, false,
               {VcpuEnd::kUnexpectedExit}, "KVM_EXIT_HLT"});
  m.push_back({"spin", code(guest_spin_begin, guest_spin_end), 2, true, false, true, {VcpuEnd::kTimeout},
               "still running at the timeout"});
  m.push_back({"I/O port storm (handled ports)", code(guest_iostorm_begin, guest_iostorm_end), 2, false, true, true,
               {VcpuEnd::kTimeout}, "still running at the timeout"});
  m.push_back({"I/O to an unhandled port", code(guest_port_begin, guest_port_end), 1, false, false, false,
               {VcpuEnd::kUnexpectedExit}, "out of 1 byte(s) to I/O port 0x80 (KVM_EXIT_IO)"});
  m.push_back({"write to unmapped memory", code(guest_mmio_begin, guest_mmio_end), 1, false, false, false,
               {VcpuEnd::kUnmappedMemory}, "write of 4 byte(s) at guest-physical 0x20000000"});
  m.push_back({"execute from unmapped memory", code(guest_fetch_begin, guest_fetch_end), 1, false, false, false,
               {VcpuEnd::kInternalError, VcpuEnd::kUnmappedMemory, VcpuEnd::kShutdown}, "", ""});
  m.push_back({"IDT outside RAM (event delivery)", code(guest_badidt_begin, guest_badidt_end), 1, false, false,
               false, {VcpuEnd::kInternalError, VcpuEnd::kUnmappedMemory, VcpuEnd::kShutdown}, ""});
  m.push_back({"vCPU 0 faults, vCPU 1 halts for ever", code(guest_mixed_begin, guest_mixed_end), 2, true, false,
               false, fault, ""});
  return m;
}

bool irqchip_available() {
  auto kvm = Kvm::open();
  return kvm && kvm->has(KVM_CAP_IRQCHIP);
}

void expect_reported(const Hostile& h, const Outcome& o, double timeout_s) {
  const MachineReport& r = o.report;
  ASSERT_EQ(r.vcpus.size(), h.vcpus);
  EXPECT_FALSE(r.all_done());
  EXPECT_EQ(r.timed_out, h.by_timeout);
  const VcpuReport* v = blamed(r);
  ASSERT_NE(v, nullptr);
  EXPECT_TRUE(h.ends.count(v->end)) << vcpu_end_name(v->end) << ": " << v->what;
  EXPECT_NE(v->what.find(h.what), std::string::npos) << v->what;
  EXPECT_NE(r.failure().find(v->what), std::string::npos) << r.failure();
  // Registers: every vCPU that did not finish has a dump, and it is the guest's state.
  for (const auto& u : r.vcpus) {
    EXPECT_NE(u.dump.find("rip "), std::string::npos) << "vCPU " << u.index << " has no register dump";
    EXPECT_NE(u.dump.find("cr3 "), std::string::npos);
    // A vCPU stopped because another faulted, or kicked at the timeout, is still in its code.
    if (u.end == VcpuEnd::kStopped || u.end == VcpuEnd::kTimeout) {
      EXPECT_NE(u.dump.find("rip 00000000000080"), std::string::npos) << u.dump;
    }
  }
  if (*h.rip_prefix) {
    EXPECT_NE(v->dump.find(h.rip_prefix), std::string::npos) << v->dump;
  }
  // A fault ends the VM before the timeout (timed_out above says which ended it); the others run
  // the whole timeout, then the kick ends them. The bounds are loose on purpose: they tell "ended
  // by the fault" from "waited for the timeout", not how fast (a loaded CI machine is slow).
  if (h.by_timeout) {
    EXPECT_GE(r.run_ms, timeout_s * 1000 * 0.99);
    EXPECT_LT(o.elapsed_s, timeout_s + 30.0) << "the kick must end it";
  } else {
    EXPECT_LT(o.elapsed_s, timeout_s) << "a fault must end the VM, not wait for the timeout";
  }
}

void print_outcome(const Hostile& h, const Outcome& o) {
  const VcpuReport* v = blamed(o.report);
  std::printf("[hostile] %s: %.0f ms, %s\n", h.name, o.report.run_ms, o.report.failure().c_str());
  for (const auto& u : o.report.vcpus)
    std::printf("[hostile]   vCPU %u: %s (%s), %llu exits\n", u.index, vcpu_end_name(u.end), u.what.c_str(),
                static_cast<unsigned long long>(u.exits));
  if (v) std::printf("%s\n", v->dump.c_str());
  if (o.io_taken) std::printf("[hostile]   I/O exits taken by the VMM: %llu\n", static_cast<unsigned long long>(o.io_taken));
}

TEST(HostileGuest, EachIsReportedWithRegistersAndEndsInTime) {
  REQUIRE_KVM();
  for (const Hostile& h : matrix(irqchip_available())) {
    SCOPED_TRACE(h.name);
    // Guests that only the timeout ends get half a second; faulting ones 20 s, which they must
    // never reach.
    const double timeout_s = h.by_timeout ? 0.5 : 20.0;
    size_t fds = open_fds(), tasks = settled_threads();
    Outcome o = run_hostile(h, timeout_s);
    expect_reported(h, o, timeout_s);
    // No thread left behind (each vCPU thread joined and gone), no fd left open.
    EXPECT_EQ(settled_threads(), tasks);
    for (const auto& u : o.report.vcpus)
      EXPECT_TRUE(eventually([&] { return !thread_exists(u.tid); })) << "vCPU " << u.index;
    EXPECT_EQ(open_fds(), fds);
    print_outcome(h, o);
  }
}

TEST(HostileGuest, AStormIsAStorm) {
  REQUIRE_KVM();
  // The storm guest's I/O exits all reach the VMM and the guest keeps running between them.
  Hostile h = matrix(false)[3];
  ASSERT_STREQ(h.name, "I/O port storm (handled ports)");
  Outcome o = run_hostile(h, 0.3);
  ASSERT_EQ(o.report.vcpus.size(), 2u);
  EXPECT_GT(o.io_taken, 1000u);
  for (const auto& u : o.report.vcpus) {
    EXPECT_GT(u.exits, 500u);
    uint64_t rbx = dump_reg(u.dump, "rbx");  // round trips the guest made
    EXPECT_GT(rbx, 250u) << u.dump;
    EXPECT_LE(rbx, u.exits / 2 + 1) << u.dump;  // two exits per round trip
  }
}

TEST(HostileGuest, HaltedGuestKeepsInterruptsOff) {
  REQUIRE_KVM();
  Hostile h = matrix(false)[1];
  ASSERT_STREQ(h.name, "hlt, interrupts off, no irqchip");
  Outcome o = run_hostile(h, 2);
  ASSERT_EQ(o.report.vcpus.size(), 1u);
  EXPECT_EQ(dump_reg(o.report.vcpus[0].dump, "rflags") & 0x200, 0u) << o.report.vcpus[0].dump;  // IF clear
  EXPECT_EQ(dump_reg(o.report.vcpus[0].dump, "rip"), 0x8002u) << "just after the hlt";
}

// 1,000 runs through every row of the matrix: the fd and thread counts of the process are the
// same at the end as after the first round. To keep it fast the guests that only a timeout ends
// get 5 ms, and only the rows that need it (a hlt that must block in the kernel) have an
// in-kernel irqchip: creating and destroying one costs ~15 ms of RCU grace periods.
TEST(HostileGuest, ThousandHostileRunsLeakNoFdsOrThreads) {
  REQUIRE_KVM();
  std::vector<Hostile> rows = matrix(irqchip_available());
  for (auto& h : rows)
    h.irqchip = h.irqchip && (h.guest.data() == guest_hlt_begin || h.guest.data() == guest_mixed_begin);
  auto timeout_of = [](const Hostile& h) { return h.by_timeout ? 0.005 : 5.0; };
  for (const auto& h : rows) run_hostile(h, timeout_of(h));  // warm up
  size_t fds = open_fds(), tasks = settled_threads();
  std::vector<unsigned> wrong(rows.size());
  auto t0 = Clock::now();
  for (int i = 0; i < 1000; ++i) {
    const Hostile& h = rows[i % rows.size()];
    Outcome o = run_hostile(h, timeout_of(h));
    const VcpuReport* v = blamed(o.report);
    if (!v || !h.ends.count(v->end) || o.report.timed_out != h.by_timeout) ++wrong[i % rows.size()];
  }
  double s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("[hostile] 1000 runs over %zu guests in %.1f s; fds %zu -> %zu, threads %zu -> %zu\n", rows.size(), s,
              fds, open_fds(), tasks, settled_threads());
  EXPECT_EQ(open_fds(), fds);
  EXPECT_EQ(settled_threads(), tasks);
  for (size_t k = 0; k < rows.size(); ++k) EXPECT_EQ(wrong[k], 0u) << rows[k].name;
}

}  // namespace
}  // namespace cpumodel::vmm
