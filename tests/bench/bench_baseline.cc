// Benchmark (prints figures, asserts nothing): cluster baselines at scale and against libvirt.
//  1. A 100,000-host bundle made from the real Intel dumps with noise (a few named feature bits
//     cleared per host, TSC jitter): in-process load, intersection (hosts/s), full baseline; and
//     the whole `cpumodel baseline BUNDLE` process, wall.
//  2. Side by side with `virsh -c test:///default cpu-baseline --features` on the same 2-host and
//     48-host inputs (libvirt's <cpu> for each of our profiles), whole process against whole process.
// Usage: bench_baseline [HOSTS] [CPUMODEL_BINARY]
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "cpumodel/migrate/baseline.h"
#include "cpumodel/migrate/bundle.h"
#include "cpumodel/migrate/format.h"

extern char** environ;

namespace {

using namespace cpumodel;
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? -1 : v[v.size() / 2];
}

struct Timing {
  double wall_ms = -1, cpu_ms = -1;  // cpu: user + system of the child (the machine may be shared)
};

// One process run with stdout/stderr to /dev/null; wall_ms < 0 when it fails.
Timing time_process(const std::vector<std::string>& args) {
  std::vector<std::string> a = args;
  std::vector<char*> argv;
  for (auto& s : a) argv.push_back(s.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  auto t0 = Clock::now();
  pid_t pid;
  int rc = posix_spawnp(&pid, a[0].c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return {};
  int st = 0;
  struct rusage ru {};
  ::wait4(pid, &st, 0, &ru);
  Timing t;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return t;
  t.wall_ms = ms_since(t0);
  t.cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
  return t;
}

// Medians of wall and CPU time over `runs`.
Timing median_process(const std::vector<std::string>& args, int runs) {
  std::vector<double> wall, cpu;
  for (int i = 0; i < runs; ++i) {
    Timing t = time_process(args);
    if (t.wall_ms < 0) return t;
    wall.push_back(t.wall_ms);
    cpu.push_back(t.cpu_ms);
  }
  return {median(wall), median(cpu)};
}

std::vector<std::string> intel_dumps(std::vector<HostProfile>& profiles) {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(CPUMODEL_SHARED_DIR "/data/cpuid-dumps")) {
    if (e.path().extension() != ".xml") continue;
    auto p = load_profile(e.path().string());
    if (p && p->cpuid.vendor() == "GenuineIntel") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) profiles.push_back(*load_profile(f));
  return files;
}

// Noise, as a real fleet has it: a quarter of the hosts miss one feature that microcode, BIOS or
// kernel settings take away (TSX, MPX, mitigations, PCID), and every TSC is off by up to 100 ppm.
std::vector<HostProfile> noisy_cluster(const std::vector<HostProfile>& base, size_t n) {
  std::mt19937 rng(42);
  std::vector<FeatureId> flaky;
  for (const char* name : {"hle", "rtm", "mpx", "spec-ctrl", "stibp", "ssbd", "md-clear", "pcid"})
    if (auto id = find_feature(name)) flaky.push_back(*id);
  std::vector<HostProfile> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    HostProfile h = base[rng() % base.size()];
    h.name = "h" + std::to_string(i);
    if (rng() % 4 == 0 && !flaky.empty()) {
      const FeatureInfo& f = feature(flaky[rng() % flaky.size()]);
      const FeatureWordInfo& w = word_info(f.word);
      h.cpuid.set_bit(w.leaf_or_msr, w.subleaf, w.reg, f.bit, false);
    }
    h.tsc_khz = 2'100'000.0 * (1.0 + (static_cast<double>(rng() % 200) - 100.0) * 1e-6);
    out.push_back(std::move(h));
  }
  return out;
}

void at_scale(const std::vector<HostProfile>& intel, size_t n, const std::string& binary, const Catalog& cat) {
  std::string path = "/tmp/cpumodel-bench-" + std::to_string(::getpid()) + ".pb";
  auto cluster = noisy_cluster(intel, n);
  auto st = write_file_atomic(path, encode_bundle(cluster));
  cluster.clear();
  if (!st) {
    std::printf("cannot write %s: %s\n", path.c_str(), st.error().message.c_str());
    return;
  }
  std::printf("%zu-host bundle from %zu Xeon dumps with noise: %.1f MB\n", n, intel.size(),
              static_cast<double>(std::filesystem::file_size(path)) / 1e6);
  auto t0 = Clock::now();
  std::clock_t c0 = std::clock();
  auto hosts = load_host_summaries({path});
  double load_ms = ms_since(t0), load_cpu = 1e3 * static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
  if (!hosts) {
    std::printf("load failed: %s\n", hosts.error().message.c_str());
    return;
  }
  constexpr int kRounds = 20;
  FeatureSet sink;
  t0 = Clock::now();
  for (int r = 0; r < kRounds; ++r) sink |= intersect_features(*hosts);
  double inter_ms = ms_since(t0) / kRounds;
  BaselineOptions opt;
  opt.catalog = &cat;
  t0 = Clock::now();
  auto b = compute_baseline(*hosts, cat.entries(), opt);
  double base_ms = ms_since(t0);
  std::printf("in process:\n");
  std::printf("  read + parse bundle -> summaries   %9.1f ms  (%.0f hosts/s; cpu %.1f ms)\n", load_ms,
              n / load_ms * 1e3, load_cpu);
  std::printf("  intersection (FeatureSet AND)      %9.3f ms  (%.0f hosts/s, %zu features left)\n", inter_ms,
              n / inter_ms * 1e3, sink.count());
  std::printf("  baseline (rank, name, check)       %9.1f ms  -> %s\n", base_ms,
              b ? (*b)[0].cpu_string().c_str() : b.error().message.c_str());
  Timing whole = median_process({binary, "baseline", "--format", "qemu", path}, 3);
  std::printf("whole process `cpumodel baseline --format qemu BUNDLE`, median of 3: wall %.1f ms, cpu %.1f ms\n",
              whole.wall_ms, whole.cpu_ms);
  std::filesystem::remove(path);
}

void versus_virsh(const std::vector<HostProfile>& intel, const std::vector<std::string>& files, size_t n,
                  const std::string& binary) {
  n = std::min(n, files.size());
  std::string xml_path = "/tmp/cpumodel-bench-virsh-" + std::to_string(::getpid()) + ".xml";
  std::string bundle = "/tmp/cpumodel-bench-" + std::to_string(::getpid()) + "-" + std::to_string(n) + ".pb";
  std::string xml;
  for (size_t i = 0; i < n; ++i) xml += libvirt_host_xml(intel[i].cpuid.vendor(), features_of(intel[i].cpuid, intel[i].msrs));
  std::ofstream(xml_path) << xml;
  (void)write_file_atomic(bundle, encode_bundle(std::vector<HostProfile>(intel.begin(), intel.begin() + n)));
  constexpr int kRuns = 15;
  Timing virsh = median_process({"virsh", "-c", "test:///default", "cpu-baseline", "--features", xml_path}, kRuns);
  std::vector<std::string> args = {binary, "baseline", "--format", "libvirt"};
  args.insert(args.end(), files.begin(), files.begin() + n);
  Timing files_t = median_process(args, kRuns);
  Timing bundle_t = median_process({binary, "baseline", "--format", "libvirt", bundle}, kRuns);
  std::printf("%2zu hosts, whole process, median of %d (wall / cpu ms):  virsh %6.2f / %6.2f   cpumodel on dump files "
              "%6.2f / %6.2f   on a bundle %6.2f / %6.2f   wall ratio %.1fx / %.1fx\n",
              n, kRuns, virsh.wall_ms, virsh.cpu_ms, files_t.wall_ms, files_t.cpu_ms, bundle_t.wall_ms, bundle_t.cpu_ms,
              virsh.wall_ms / files_t.wall_ms, virsh.wall_ms / bundle_t.wall_ms);
  std::filesystem::remove(xml_path);
  std::filesystem::remove(bundle);
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = argc > 1 ? std::stoul(argv[1]) : 100000;
  std::string binary = argc > 2 ? argv[2] : CPUMODEL_BINARY;
  std::vector<HostProfile> intel;
  auto files = intel_dumps(intel);
  auto cat = Catalog::load_default();
  if (intel.empty() || !cat) {
    std::fprintf(stderr, "bench_baseline: no dumps or no catalog\n");
    return 2;
  }
  // The fleet: the Xeon server parts among the Intel dumps.
  std::vector<HostProfile> xeons;
  for (size_t i = 0; i < files.size(); ++i)
    if (files[i].find("Xeon") != std::string::npos) xeons.push_back(intel[i]);
  auto t0 = Clock::now();
  auto again = Catalog::load_default();
  std::printf("catalog load (data/models/*.yaml), in process: %.1f ms\n", ms_since(t0));
  at_scale(xeons, n, binary, *cat);
  if (time_process({"virsh", "--version"}).wall_ms < 0) {
    std::printf("virsh not installed: no side-by-side figures\n");
    return 0;
  }
  versus_virsh(intel, files, 2, binary);
  versus_virsh(intel, files, 48, binary);
  return 0;
}
