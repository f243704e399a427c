// The -smp grammar: parse_smp rejects or accepts any bytes; an accepted topology is consistent
// (sockets*dies*cores*threads == maxcpus >= cpus >= 1) and format_smp prints one that parses back
// to the same value (parse(format(x)) == x).
#include <cstdint>

#include "cpumodel/cpuid/smp.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cpumodel;
  using namespace cpumodel::fuzz;
  auto smp = parse_smp(as_text(data, size));
  if (!smp) {
    check_one_line(smp.error().message);
    return 0;
  }
  std::string printed = format_smp(*smp);
  unsigned long long product = 1ull * smp->sockets * smp->dies * smp->cores * smp->threads;
  check(product == smp->maxcpus, "sockets*dies*cores*threads == maxcpus", printed);
  check(smp->cpus >= 1 && smp->cpus <= smp->maxcpus, "1 <= cpus <= maxcpus", printed);
  auto again = parse_smp(printed);
  check(again.ok(), "format_smp output parses", printed + "\n" + (again ? "" : again.error().message));
  check(*again == *smp, "parse(format(x)) == x", printed + " -> " + format_smp(*again));
  return 0;
}
