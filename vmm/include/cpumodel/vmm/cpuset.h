// Host CPU sets and vCPU pinning, as taskset and libvirt's vcpupin spell them: `--affinity 0-3,6`
// confines the whole VMM, `--pin 0:2,1:3` (or 0:2-3) pins vCPU threads. CPUs that do not exist
// or that the process may not use are bad input (exit 2).
#pragma once

#include <bitset>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cpumodel/cpuid/result.h"

namespace cpumodel::vmm {

class CpuSet {
 public:
  static constexpr unsigned kMax = 1024;  // CPU_SETSIZE
  // "0-3,6" (Linux cpulist). Errors name the token and column; `what` prefixes them ("--affinity").
  static Result<CpuSet> parse(std::string_view text, std::string_view what = "CPU list");
  void add(unsigned cpu) { if (cpu < kMax) bits_.set(cpu); }
  bool has(unsigned cpu) const { return cpu < kMax && bits_.test(cpu); }
  bool empty() const { return bits_.none(); }
  size_t count() const { return bits_.count(); }
  std::vector<unsigned> cpus() const;
  std::string format() const;  // "0-3,6"; "" when empty
  bool operator==(const CpuSet&) const = default;

 private:
  std::bitset<kMax> bits_;
};

// vCPU index -> host CPUs.
using PinMap = std::map<unsigned, CpuSet>;
Result<PinMap> parse_pin_map(std::string_view text);  // "0:2,1:3", "0:2-3,1:4"

// The calling thread's allowed CPUs (sched_getaffinity) and the host's online CPUs.
CpuSet current_affinity();
CpuSet online_cpus(const std::string& sysfs_online = "/sys/devices/system/cpu/online");

// Every CPU of `cpus` exists and is in this process's allowed set; else an exit-2 error naming
// `what` and the CPU ("--pin 1:7: CPU 7 does not exist (this host has CPUs 0-1)").
Status check_cpus(const CpuSet& cpus, std::string_view what);
// Checks the pin map against the vCPU count and the allowed CPUs.
Status check_pin_map(const PinMap& pins, unsigned vcpu_count);
// --affinity: checks, then sched_setaffinity on the calling thread; threads it starts later
// inherit it, so call it before starting any.
Status apply_affinity(const CpuSet& cpus);
// sched_setaffinity for the calling thread.
Status pin_current_thread(const CpuSet& cpus);

// Field `n` (numbered as proc(5) does; n >= 3) of a /proc/.../stat file, counted after the last
// ')' since field 2 (comm) may hold spaces; "" when the file or the field is missing.
std::string proc_stat_field(const std::string& path, int n);

// The CPU a thread of this process last ran on: field 39 of /proc/self/task/TID/stat; -1 when unknown.
int last_cpu_of(int tid);

}  // namespace cpumodel::vmm
