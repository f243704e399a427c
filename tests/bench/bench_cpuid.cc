// bench_cpuid: how long the guest CPUID builder takes for a large guest, in-process. Prints
// figures; asserts nothing about time. Usage: bench_cpuid [SPEC] [SMP] [ROUNDS]
// (default Skylake-Server-v4, 256 vCPUs as 2 sockets x 64 cores x 2 threads, 200 rounds).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "cpumodel/cpuid/guest_cpuid.h"
#include "cpumodel/models/catalog.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

struct Figures {
  double min, median, p90;
};

Figures summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v.front(), v[v.size() / 2], v[v.size() * 9 / 10]};
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cpumodel;
  std::string spec = argc > 1 ? argv[1] : "Skylake-Server-v4";
  std::string smp_text = argc > 2 ? argv[2] : "256,sockets=2,cores=64,threads=2";
  int rounds = argc > 3 ? std::max(1, std::atoi(argv[3])) : 200;

  auto catalog = Catalog::load_default();
  if (!catalog) return std::fprintf(stderr, "bench_cpuid: %s\n", catalog.error().message.c_str()), 2;
  auto x = catalog->expand(spec);
  if (!x) return std::fprintf(stderr, "bench_cpuid: %s\n", x.error().message.c_str()), 2;
  auto smp = parse_smp(smp_text);
  if (!smp) return std::fprintf(stderr, "bench_cpuid: %s\n", smp.error().message.c_str()), 2;

  // A host to filter against: the definition's own table, so check mode runs but drops nothing.
  HostProfile host;
  host.name = "bench";
  host.kvm_cpuid = build_guest_cpuid(x->cpu, parse_smp("1").value(), nullptr).value().tables[0];
  host.cpuid = *host.kvm_cpuid;

  std::vector<double> build_ms, build_host_ms, kvm_ms;
  size_t entries = 0, bytes = 0;
  for (int r = 0; r < rounds; ++r) {
    auto t0 = Clock::now();
    auto g = build_guest_cpuid(x->cpu, *smp, nullptr);
    build_ms.push_back(ms_since(t0));
    t0 = Clock::now();
    auto gh = build_guest_cpuid(x->cpu, *smp, &host);
    build_host_ms.push_back(ms_since(t0));
    t0 = Clock::now();
    bytes = 0;
    for (const auto& t : g->tables) bytes += to_kvm_cpuid2(t).size();
    kvm_ms.push_back(ms_since(t0));
    entries = g->tables.empty() ? 0 : g->tables[0].size();
  }
  Figures a = summarize(build_ms), b = summarize(build_host_ms), c = summarize(kvm_ms);
  std::printf("bench_cpuid: %s, smp %s: %u vCPUs, %zu entries per table, %d rounds (target: build < 5 ms)\n",
              x->cpu.model.c_str(), smp_text.c_str(), smp->cpus, entries, rounds);
  std::printf("  build_guest_cpuid, no host      min %.3f ms  median %.3f ms  p90 %.3f ms\n", a.min, a.median, a.p90);
  std::printf("  build_guest_cpuid, check host   min %.3f ms  median %.3f ms  p90 %.3f ms\n", b.min, b.median, b.p90);
  std::printf("  to_kvm_cpuid2 x %u (%zu bytes)   min %.3f ms  median %.3f ms  p90 %.3f ms\n", smp->cpus, bytes, c.min,
              c.median, c.p90);
  return 0;
}
