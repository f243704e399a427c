// The -smp grammar: N[,maxcpus=M][,sockets=S][,dies=D][,cores=C][,threads=T], with QEMU 7.2's
// rules for what is omitted (machine types >= 6.2 prefer cores over sockets).
#pragma once

#include <string>
#include <string_view>

#include "cpumodel/cpuid/result.h"

namespace cpumodel {

struct SmpConfig {
  unsigned cpus = 1;      // vCPUs present at start
  unsigned maxcpus = 1;   // sockets * dies * cores * threads
  unsigned sockets = 1;
  unsigned dies = 1;
  unsigned cores = 1;     // per die
  unsigned threads = 1;   // per core
  bool operator==(const SmpConfig&) const = default;
};

Result<SmpConfig> parse_smp(std::string_view text);
std::string format_smp(const SmpConfig& smp);  // "8,maxcpus=8,sockets=2,dies=1,cores=2,threads=2"

}  // namespace cpumodel
