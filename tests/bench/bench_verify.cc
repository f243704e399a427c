// Benchmark (prints figures, asserts nothing): `cpumodel verify --cpu qemu64` on this machine's
// KVM, next to the floor (floor_kvm.c: only the ioctls, create VM + vCPUs, set CPUID, run CPUID
// once), in the same run.
//   1. whole process, 1 and 8 vCPUs: min and median wall time of N runs (`cpumodel --version` too,
//      the cost of just starting the executable);
//   2. in process: catalog + tables, then the VM part alone (verify_guest);
//   3. VMM memory overhead: peak RSS of a forked child that runs the VM minus one that does not
//      (guest pages it touches included), and the whole verify process's peak RSS minus guest RAM
//      (and minus --version's);
//   4. 1,000 VM create/run/destroy cycles in one process: fds and RSS before and after.
// Usage: bench_verify [RUNS] [CPUMODEL_BINARY] [FLOOR_BINARY]
#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "cpumodel/models/catalog.h"
#include "cpumodel/vmm/probe.h"
#include "cpumodel/vmm/verify.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

struct Spawned {
  double ms = -1;
  long max_rss_kib = 0;
  int exit_code = -1;
};

Spawned spawn(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  Spawned s;
  auto t = Clock::now();
  pid_t pid = 0;
  if (posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ) == 0) {
    int status = 0;
    rusage ru{};
    ::wait4(pid, &status, 0, &ru);
    s.ms = ms_since(t);
    s.max_rss_kib = ru.ru_maxrss;
    s.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  posix_spawn_file_actions_destroy(&fa);
  return s;
}

struct Stats {
  double min = 0, median = 0;
  long rss_kib = 0;
  int exit_code = -1;
};

// The commands in turn, `runs` rounds: wall times here drift by 30% from minute to minute, so a
// ratio is only fair between commands measured side by side.
std::vector<Stats> repeat_interleaved(const std::vector<std::vector<std::string>>& argvs, int runs) {
  std::vector<std::vector<double>> ms(argvs.size());
  std::vector<Stats> st(argvs.size());
  for (int i = 0; i < runs; ++i)
    for (size_t c = 0; c < argvs.size(); ++c) {
      Spawned s = spawn(argvs[c]);
      ms[c].push_back(s.ms);
      st[c].rss_kib = std::max(st[c].rss_kib, s.max_rss_kib);
      st[c].exit_code = s.exit_code;
    }
  for (size_t c = 0; c < argvs.size(); ++c) {
    std::sort(ms[c].begin(), ms[c].end());
    st[c].min = ms[c].front();
    st[c].median = ms[c][ms[c].size() / 2];
  }
  return st;
}

long status_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + std::string(field).size() + 1);
  return -1;
}

size_t open_fds() {
  size_t n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
  ::closedir(d);
  return n;
}

// How many CPUIDs the probe runs per vCPU for qemu64 (each one an exit on kvm_pvm), for the second floor.
size_t probe_cpuids() {
  using namespace cpumodel;
  auto host = vmm::kvm_host_profile();
  auto cat = Catalog::load_default();
  if (!host || !cat) return 0;
  auto x = cat->expand("qemu64", &*host, false);
  if (!x) return 0;
  SmpConfig smp;
  auto g = build_guest_cpuid(x->cpu, smp, &*host, {});
  if (!g) return 0;
  auto r = vmm::verify_guest(*g, {});
  return r && !r->vcpus.empty() ? r->vcpus[0].leaves_probed : 0;
}

void whole_process(const std::string& binary, const std::string& floor, int runs) {
  std::printf("1. whole process (%d runs each, verify and its floors in turn; min / median wall ms; peak RSS)\n", runs);
  Stats version = repeat_interleaved({{binary, "--version"}}, runs)[0];
  std::printf("   cpumodel --version                 %7.2f / %7.2f ms   %6ld KiB\n", version.min, version.median,
              version.rss_kib);
  size_t cpuids = probe_cpuids();
  for (int n : {1, 8}) {
    std::vector<std::vector<std::string>> argvs = {{binary, "verify", "--cpu", "qemu64", "--smp", std::to_string(n)},
                                                   {floor, std::to_string(n)}};
    if (cpuids > 1) argvs.push_back({floor, std::to_string(n), "/dev/kvm", std::to_string(cpuids)});
    std::vector<Stats> all = repeat_interleaved(argvs, runs);
    Stats v = all[0], f = all[1];
    std::printf("   verify --cpu qemu64 --smp %d        %7.2f / %7.2f ms   %6ld KiB  (exit %d; peak RSS minus "
                "2048 KiB guest RAM: %ld KiB, minus --version's too: %ld KiB)\n",
                n, v.min, v.median, v.rss_kib, v.exit_code, v.rss_kib - 2048, v.rss_kib - version.rss_kib);
    std::printf("   floor_kvm %d (CPUID once)           %7.2f / %7.2f ms   %6ld KiB  (exit %d)\n", n, f.min,
                f.median, f.rss_kib, f.exit_code);
    std::printf("   ratio verify/floor (min / median)   %7.2fx / %.2fx\n", v.min / f.min, v.median / f.median);
    if (cpuids > 1) {
      // The same floor running as many CPUIDs as the probe does: what the guest's work costs on
      // this backend, whatever the VMM around it.
      Stats fc = all[2];
      std::printf("   floor_kvm %d, %3zu CPUIDs per vCPU    %7.2f / %7.2f ms   (exit %d); ratio verify/that (min / "
                  "median) %.2fx / %.2fx\n",
                  n, cpuids, fc.min, fc.median, fc.exit_code, v.min / fc.min, v.median / fc.median);
    }
  }
}

// Peak RSS (KiB) of a forked child that runs the VM once, or does nothing.
long child_max_rss(const cpumodel::GuestCpuid& g, bool run_vm) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (run_vm) (void)cpumodel::vmm::verify_guest(g, {});
    ::_exit(0);
  }
  int status = 0;
  rusage ru{};
  ::wait4(pid, &status, 0, &ru);
  return ru.ru_maxrss;
}

int in_process(int runs) {
  using namespace cpumodel;
  auto t0 = Clock::now();
  auto host = vmm::kvm_host_profile();
  if (!host) {
    std::fprintf(stderr, "bench_verify: %s\n", host.error().message.c_str());
    return 3;
  }
  double host_ms = ms_since(t0);
  t0 = Clock::now();
  auto cat = Catalog::load_default();
  if (!cat) return 2;
  double cat_ms = ms_since(t0);
  std::printf("\n2. in process: host KVM profile %.2f ms, catalog load %.2f ms\n", host_ms, cat_ms);
  for (unsigned n : {1u, 8u}) {
    auto x = cat->expand("qemu64", &*host, false);
    SmpConfig smp;
    smp.cpus = smp.maxcpus = smp.cores = n;
    t0 = Clock::now();
    auto g = build_guest_cpuid(x->cpu, smp, &*host, {});
    double build_ms = ms_since(t0);
    std::vector<double> vm_ms;
    for (int i = 0; i < runs; ++i) {
      t0 = Clock::now();
      auto r = vmm::verify_guest(*g, {});
      vm_ms.push_back(ms_since(t0));
    }
    std::sort(vm_ms.begin(), vm_ms.end());
    std::printf("   %u vCPU(s): tables %.2f ms; VM (create, probe, compare, destroy) min %.2f / median %.2f ms\n", n,
                build_ms, vm_ms.front(), vm_ms[vm_ms.size() / 2]);
    // 3. memory: two forked children with the same inherited state, one runs the VM; the
    // difference of their peak RSS (ru_maxrss, exact at exit) is what the VMM costs, touched guest
    // pages included.
    long idle = child_max_rss(*g, false), with_vm = child_max_rss(*g, true);
    auto layout = vmm::probe_layout(vmm::probe_plan(g->tables), n);
    long guest_kib = static_cast<long>(layout.ram_size >> 10);
    std::printf("   %u vCPU(s): peak RSS %ld KiB without the VM, %ld KiB with it: +%ld KiB, of which guest RAM "
                "<= %ld KiB (a touched 2 MiB region may be one transparent huge page) -> VMM overhead beyond "
                "guest RAM >= %ld KiB, <= %ld KiB\n",
                n, idle, with_vm, with_vm - idle, guest_kib, std::max(0L, with_vm - idle - guest_kib),
                with_vm - idle);
  }
  return 0;
}

void cycles() {
  using namespace cpumodel;
  auto kvm = vmm::Kvm::open();
  auto table = kvm->supported_cpuid();
  std::vector<CpuidTable> tables = {*table};
  std::vector<uint32_t> ids = {0};
  (void)vmm::run_probe(tables, ids, {});  // warm-up
  size_t fds = open_fds();
  long rss = status_kib("VmRSS:");
  auto t0 = Clock::now();
  int failed = 0;
  for (int i = 0; i < 1000; ++i) failed += vmm::run_probe(tables, ids, {}).ok() ? 0 : 1;
  double ms = ms_since(t0);
  std::printf("\n4. 1,000 probe VMs created, run and destroyed: %.2f ms each; fds %zu -> %zu; RSS %ld -> %ld KiB; "
              "%d failed\n",
              ms / 1000, fds, open_fds(), rss, status_kib("VmRSS:"), failed);
}

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 20;
  std::string binary = argc > 2 ? argv[2] : CPUMODEL_BINARY;
  std::string floor = argc > 3 ? argv[3] : FLOOR_KVM;
  std::printf("bench_verify on %s (%ld CPUs online)\n\n", cpumodel::vmm::backend_name(cpumodel::vmm::detect_backend()),
              ::sysconf(_SC_NPROCESSORS_ONLN));
  whole_process(binary, floor, runs);
  if (int rc = in_process(runs)) return rc;
  cycles();
  return 0;
}
