// The VMM on the real /dev/kvm: device errors, threads, pinning, faults, timeouts, the probe.
// Skipped (with the reason) where /dev/kvm is missing.
#include <dirent.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cpuid.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <set>

#include "cpumodel/vmm/guest_abi.h"
#include "cpumodel/vmm/kvm.h"
#include "cpumodel/vmm/machine.h"
#include "cpumodel/vmm/probe.h"

extern "C" const uint8_t guest_done_begin[], guest_done_end[], guest_triple_begin[], guest_triple_end[];
extern "C" const uint8_t guest_spin_begin[], guest_spin_end[], guest_mmio_begin[], guest_mmio_end[];
extern "C" const uint8_t guest_port_begin[], guest_port_end[];

namespace cpumodel::vmm {
namespace {

std::span<const uint8_t> code(const uint8_t* b, const uint8_t* e) { return {b, static_cast<size_t>(e - b)}; }

bool have_kvm() { return ::access("/dev/kvm", R_OK | W_OK) == 0; }
#define REQUIRE_KVM() \
  if (!have_kvm()) GTEST_SKIP() << "/dev/kvm is missing or not accessible"

// KVM's supported CPUID: a table the backend accepts, with lm (the test guests are 64-bit).
CpuidTable kvm_table() {
  auto kvm = Kvm::open();
  EXPECT_TRUE(kvm.ok());
  auto t = kvm->supported_cpuid();
  EXPECT_TRUE(t.ok()) << t.error().message;
  return t.ok() ? *t : CpuidTable{};
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

std::string status_field(const std::string& path, const std::string& field) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(field + ":", 0) == 0) {
      size_t p = line.find_first_not_of(" \t", field.size() + 1);
      return p == std::string::npos ? "" : line.substr(p);
    }
  return "";
}

size_t open_fds() {
  size_t n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
  ::closedir(d);
  return n;
}

MachineReport run_guest(std::span<const uint8_t> guest, unsigned vcpus = 1, double timeout_s = 10,
                        std::function<void(unsigned, pid_t)> hook = {}, const PinMap& pins = {}) {
  MachineConfig config;
  config.timeout_s = timeout_s;
  config.on_vcpu_exit = std::move(hook);
  CpuidTable table = kvm_table();
  for (unsigned i = 0; i < vcpus; ++i) {
    VcpuConfig vc;
    vc.apic_id = i;
    vc.cpuid = table;
    vc.rdi = i;
    if (pins.count(i)) vc.pin = pins.at(i);
    config.vcpus.push_back(vc);
  }
  auto m = Machine::create(std::move(config));
  EXPECT_TRUE(m.ok()) << m.error().message;
  if (!m.ok()) return {};
  EXPECT_TRUE((*m)->load_code(guest).ok());
  auto r = (*m)->run();
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? *r : MachineReport{};
}

TEST(KvmDevice, MissingDeviceSaysWhatToDo) {
  auto kvm = Kvm::open("/nonexistent/kvm");
  ASSERT_FALSE(kvm.ok());
  EXPECT_EQ(kvm.error().exit_code, kExitHost);
  EXPECT_NE(kvm.error().message.find("kvm_intel or kvm_amd"), std::string::npos) << kvm.error().message;
  EXPECT_NE(kvm.error().message.find("VT-x/AMD-V"), std::string::npos);
}

TEST(KvmDevice, NotAKvmDevice) {
  auto kvm = Kvm::open("/dev/null");
  ASSERT_FALSE(kvm.ok());
  EXPECT_EQ(kvm.error().exit_code, kExitHost);
  EXPECT_NE(kvm.error().message.find("not a KVM device"), std::string::npos) << kvm.error().message;
}

TEST(KvmDevice, PermissionDeniedSaysGroupKvm) {
  REQUIRE_KVM();
  struct stat st;
  ASSERT_EQ(::stat("/dev/kvm", &st), 0);
  if (::getuid() != 0) GTEST_SKIP() << "needs root to drop to an unprivileged user";
  if (st.st_mode & S_IROTH) GTEST_SKIP() << "/dev/kvm is world-accessible here";
  // A child that gives up root (uid/gid nobody, no groups) opens /dev/kvm: EACCES.
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipefd[0]);
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(99);
    auto kvm = Kvm::open("/dev/kvm");
    std::string msg = kvm.ok() ? "opened" : kvm.error().message;
    if (::write(pipefd[1], msg.data(), msg.size()) < 0) ::_exit(98);
    ::_exit(kvm.ok() ? 0 : kvm.error().exit_code);
  }
  ::close(pipefd[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) > 0;) msg.append(buf, static_cast<size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), kExitHost) << msg;
  EXPECT_NE(msg.find("permission denied; add the user to group kvm"), std::string::npos) << msg;
}

TEST(KvmDevice, CapabilityTableIsCheckedAndNamed) {
  REQUIRE_KVM();
  auto kvm = Kvm::open();
  ASSERT_TRUE(kvm.ok()) << kvm.error().message;
  for (const auto& c : kvm_capabilities()) {
    EXPECT_TRUE(std::string(c.name).rfind("KVM_CAP_", 0) == 0);
    EXPECT_TRUE(std::string(c.since).rfind("Linux ", 0) == 0);
    if (c.required) {
      EXPECT_TRUE(kvm->has(c.cap)) << c.name;
    }
  }
}

TEST(Backend, DetectedFromSysModule) {
  char dir[] = "/tmp/cpumodel-sysmod-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  EXPECT_EQ(detect_backend(dir), Backend::kUnknown);
  std::string amd = std::string(dir) + "/kvm_amd";
  ASSERT_EQ(::mkdir(amd.c_str(), 0755), 0);
  EXPECT_EQ(detect_backend(dir), Backend::kAmd);
  EXPECT_STREQ(backend_name(detect_backend(dir)), "kvm_amd");
  ::rmdir(amd.c_str());
  ::rmdir(dir);
  // This machine: the name agrees with /sys/module.
  Backend here = detect_backend();
  if (here != Backend::kUnknown) {
    struct stat st;
    EXPECT_EQ(::stat((std::string("/sys/module/") + backend_name(here)).c_str(), &st), 0);
  }
}

TEST(Machine, GuestRunsOnEveryVcpuInANamedThread) {
  REQUIRE_KVM();
  std::mutex mu;
  std::map<unsigned, std::string> names;
  auto r = run_guest(code(guest_done_begin, guest_done_end), 3, 10, [&](unsigned i, pid_t tid) {
    std::string comm = read_text("/proc/self/task/" + std::to_string(tid) + "/comm");
    std::lock_guard<std::mutex> lock(mu);
    names[i] = comm;
  });
  ASSERT_EQ(r.vcpus.size(), 3u);
  EXPECT_TRUE(r.all_done()) << r.failure();
  std::set<pid_t> tids;
  for (const auto& v : r.vcpus) {
    EXPECT_EQ(v.end, VcpuEnd::kDone) << v.what;
    EXPECT_EQ(v.done_value, 0x1234u + v.index);  // each vCPU got its own RDI
    EXPECT_EQ(names[v.index], "vcpu " + std::to_string(v.index));
    EXPECT_GE(v.last_cpu, 0);
    tids.insert(v.tid);
  }
  EXPECT_EQ(tids.size(), 3u);
  EXPECT_EQ(tids.count(static_cast<pid_t>(::gettid())), 0u);
}

// From 4 vCPUs on, create() sets up the second half on a helper thread. Every vCPU is set up as
// asked (each runs with its own registers), and of several that KVM refuses, the first by index
// is the one reported, with nothing left open.
TEST(Machine, VcpusSetUpOnTwoThreadsRunAndTheFirstFailureIsReported) {
  REQUIRE_KVM();
  auto r = run_guest(code(guest_done_begin, guest_done_end), 6);
  ASSERT_EQ(r.vcpus.size(), 6u);
  EXPECT_TRUE(r.all_done()) << r.failure();
  for (const auto& v : r.vcpus) EXPECT_EQ(v.done_value, 0x1234u + v.index);

  size_t before = open_fds();
  CpuidTable too_big = kvm_table();  // KVM takes at most 256 entries (E2BIG)
  for (uint32_t sub = 0; sub < 300; ++sub) too_big.set(4, sub, CpuidRegs{});
  for (std::vector<unsigned> bad : {std::vector<unsigned>{4, 5}, std::vector<unsigned>{1, 4}}) {
    MachineConfig config;
    for (unsigned i = 0; i < 6; ++i) {
      VcpuConfig vc;
      vc.apic_id = i;
      vc.cpuid = std::find(bad.begin(), bad.end(), i) != bad.end() ? too_big : kvm_table();
      config.vcpus.push_back(vc);
    }
    auto m = Machine::create(std::move(config));
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.error().message.find("KVM_SET_CPUID2 (vCPU " + std::to_string(bad[0]) + ","), std::string::npos)
        << m.error().message;
    EXPECT_EQ(open_fds(), before);
  }
}

TEST(Machine, PinningIsHonoured) {
  REQUIRE_KVM();
  CpuSet online = online_cpus();
  std::vector<unsigned> cpus = online.cpus();
  if (cpus.size() < 2) GTEST_SKIP() << "needs 2 CPUs";
  PinMap pins;
  pins[0].add(cpus[1]);
  pins[1].add(cpus[0]);
  std::mutex mu;
  std::map<unsigned, std::string> allowed;
  auto r = run_guest(code(guest_done_begin, guest_done_end), 2, 10, [&](unsigned i, pid_t tid) {
    std::string list = status_field("/proc/self/task/" + std::to_string(tid) + "/status", "Cpus_allowed_list");
    std::lock_guard<std::mutex> lock(mu);
    allowed[i] = list;
  }, pins);
  ASSERT_TRUE(r.all_done()) << r.failure();
  for (unsigned i = 0; i < 2; ++i) {
    EXPECT_EQ(allowed[i], pins[i].format()) << "vCPU " << i;
    EXPECT_TRUE(r.vcpus[i].pinned);
    EXPECT_EQ(r.vcpus[i].allowed, pins[i]);
    EXPECT_EQ(r.vcpus[i].last_cpu, static_cast<int>(pins[i].cpus()[0]));
  }
}

TEST(Machine, TripleFaultEndsTheVmWithARegisterDump) {
  REQUIRE_KVM();
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_guest(code(guest_triple_begin, guest_triple_end), 2, 20);
  ASSERT_EQ(r.vcpus.size(), 2u);
  EXPECT_FALSE(r.all_done());
  EXPECT_FALSE(r.timed_out) << "a fault must end the VM, not wait for the timeout";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  for (const auto& v : r.vcpus) {
    EXPECT_NE(v.end, VcpuEnd::kDone);
    EXPECT_NE(v.end, VcpuEnd::kTimeout);
  }
  // The first vCPU to fault ends the VM; the others may fault too or be stopped.
  const VcpuReport* faulted = nullptr;
  for (const auto& v : r.vcpus) {
    if (v.end == VcpuEnd::kShutdown || v.end == VcpuEnd::kInternalError) {
      faulted = &v;
    } else {
      EXPECT_EQ(v.end, VcpuEnd::kStopped) << v.what;
    }
  }
  ASSERT_NE(faulted, nullptr);
  EXPECT_NE(faulted->dump.find("rip 0000000000008000"), std::string::npos) << faulted->dump;  // at the ud2
  EXPECT_NE(r.failure().find(faulted->what), std::string::npos) << r.failure();
}

TEST(Machine, TimeoutKicksASpinningGuest) {
  REQUIRE_KVM();
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_guest(code(guest_spin_begin, guest_spin_end), 2, 0.3);
  auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(r.timed_out);
  for (const auto& v : r.vcpus) {
    EXPECT_EQ(v.end, VcpuEnd::kTimeout) << v.what;
    EXPECT_NE(v.dump.find("rip 00000000000080"), std::string::npos) << v.dump;  // still in the guest's code
  }
  EXPECT_LT(elapsed, std::chrono::seconds(5));
}

TEST(Machine, UnmappedMemoryIsReported) {
  REQUIRE_KVM();
  auto r = run_guest(code(guest_mmio_begin, guest_mmio_end), 1, 10);
  ASSERT_EQ(r.vcpus.size(), 1u);
  EXPECT_EQ(r.vcpus[0].end, VcpuEnd::kUnmappedMemory) << r.vcpus[0].what;
  EXPECT_NE(r.vcpus[0].what.find("0x20000000"), std::string::npos) << r.vcpus[0].what;
  EXPECT_NE(r.vcpus[0].dump, "");
}

TEST(Machine, UnexpectedPortIsReported) {
  REQUIRE_KVM();
  auto r = run_guest(code(guest_port_begin, guest_port_end), 1, 10);
  ASSERT_EQ(r.vcpus.size(), 1u);
  EXPECT_EQ(r.vcpus[0].end, VcpuEnd::kUnexpectedExit);
  EXPECT_NE(r.vcpus[0].what.find("port 0x80"), std::string::npos) << r.vcpus[0].what;
}

TEST(Machine, ThousandVmCyclesLeakNoFds) {
  REQUIRE_KVM();
  auto guest = code(guest_done_begin, guest_done_end);
  CpuidTable table = kvm_table();
  auto cycle = [&] {
    MachineConfig config;
    config.irqchip = false;  // as the probe runs; with it each cycle costs ~15 ms of RCU grace periods
    config.vcpus.push_back(VcpuConfig{});
    config.vcpus[0].cpuid = table;
    auto m = Machine::create(std::move(config));
    if (!m.ok()) return false;
    if (!(*m)->load_code(guest).ok()) return false;
    auto r = (*m)->run();
    return r.ok() && r->all_done();
  };
  ASSERT_TRUE(cycle());  // warm up (signal handler, lazily opened things)
  size_t before = open_fds();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(cycle()) << "cycle " << i;
  EXPECT_EQ(open_fds(), before);
}

// --- the probe guest ---

ProbeRun probe(const std::vector<CpuidTable>& tables, const ProbeOptions& options = {}) {
  std::vector<uint32_t> ids;
  for (uint32_t i = 0; i < tables.size(); ++i) ids.push_back(i);
  auto r = run_probe(tables, ids, options);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? *r : ProbeRun{};
}

const ProbeRecord* find(const std::vector<ProbeRecord>& recs, uint32_t leaf, uint32_t subleaf) {
  for (const auto& r : recs)
    if (r.leaf == leaf && r.subleaf == subleaf) return &r;
  return nullptr;
}

TEST(Probe, GuestSeesVendorAndExtendedLeafAsSet) {
  REQUIRE_KVM();
  CpuidTable t = kvm_table();
  // A vendor no real CPU has, and 0x80000001 with some supported bits cleared.
  t.set(0, 0, CpuidRegs{t.max_basic(), 0x6d757063, 0x54534554, 0x6c65646f});  // "cpumodelTEST"
  CpuidRegs ext = t.get(0x80000001);
  ext.ecx &= ~1u;             // lahf-lm
  ext.edx &= ~(1u << 27);     // rdtscp
  t.set(0x80000001, 0, ext);
  auto run = probe({t, t});
  ASSERT_EQ(run.records.size(), 2u);
  for (const auto& recs : run.records) {
    const ProbeRecord* leaf0 = find(recs, 0, 0);
    ASSERT_NE(leaf0, nullptr);
    EXPECT_EQ(leaf0->regs(), t.get(0));
    const ProbeRecord* e1 = find(recs, 0x80000001, 0);
    ASSERT_NE(e1, nullptr);
    EXPECT_EQ(e1->ecx, ext.ecx);
    EXPECT_EQ(e1->edx, ext.edx);
    // The basic and extended ranges were walked up to the max leaves the guest read.
    for (uint32_t l = 0; l <= t.max_basic(); ++l) EXPECT_NE(find(recs, l, 0), nullptr) << "leaf " << l;
    for (uint32_t l = 0x80000000; l <= t.max_extended(); ++l) EXPECT_NE(find(recs, l, 0), nullptr) << hex(l);
  }
  EXPECT_EQ(run.machine.vcpus.size(), 2u);
}

TEST(Probe, EveryTableSubleafIsProbed) {
  REQUIRE_KVM();
  CpuidTable t = kvm_table();
  auto run = probe({t});
  ASSERT_EQ(run.records.size(), 1u);
  for (const auto& [key, regs] : t.entries())
    EXPECT_NE(find(run.records[0], key.leaf, key.subleaf), nullptr) << hex(key.leaf) << "." << key.subleaf;
}

TEST(Probe, ProtectedModeProbeForModelsWithoutLm) {
  REQUIRE_KVM();
  CpuidTable t = kvm_table();
  t.set_bit(0x80000001, 0, Reg::kEdx, 29, false);
  auto run = probe({t});
  ASSERT_EQ(run.records.size(), 1u);
  EXPECT_EQ(run.machine.mode, CpuMode::kProtected32);
  const ProbeRecord* e1 = find(run.records[0], 0x80000001, 0);
  ASSERT_NE(e1, nullptr);
  EXPECT_EQ((e1->edx >> 29) & 1, 0u);
  // The 32-bit copy of the probe runs the same CPUIDs as the 64-bit one.
  CpuidTable with_lm = t;
  with_lm.set_bit(0x80000001, 0, Reg::kEdx, 29, true);
  auto run64 = probe({with_lm});
  ASSERT_EQ(run64.records.size(), 1u);
  EXPECT_EQ(run64.machine.mode, CpuMode::kLong64);
  ASSERT_EQ(run64.records[0].size(), run.records[0].size());
  for (size_t i = 0; i < run.records[0].size(); ++i) {
    EXPECT_EQ(run64.records[0][i].leaf, run.records[0][i].leaf);
    EXPECT_EQ(run64.records[0][i].subleaf, run.records[0][i].subleaf);
  }
  EXPECT_EQ(find(run64.records[0], 0, 0)->regs(), find(run.records[0], 0, 0)->regs());
}

}  // namespace
}  // namespace cpumodel::vmm
