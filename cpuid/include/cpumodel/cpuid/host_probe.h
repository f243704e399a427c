// The host behind an interface: a CpuidSource answers CPUID(leaf, subleaf); the real one runs the
// instruction, tests use one over a table (a dump). enumerate_cpuid walks every leaf and subleaf
// that exists by each leaf's own rules; probe_host adds KVM, topology and facts.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cpumodel/cpuid/json.h"
#include "cpumodel/cpuid/profile.h"
#include "cpumodel/cpuid/result.h"
#include "cpumodel/cpuid/table.h"

namespace cpumodel {

class CpuidSource {
 public:
  virtual ~CpuidSource() = default;
  virtual CpuidRegs query(uint32_t leaf, uint32_t subleaf) const = 0;
};

// The cpuid instruction, on whatever CPU the calling thread runs.
class HostCpuidSource final : public CpuidSource {
 public:
  CpuidRegs query(uint32_t leaf, uint32_t subleaf) const override;
};

// A table as a CPU: absent entries read as zero; leaves that ignore ECX answer any subleaf.
class TableCpuidSource final : public CpuidSource {
 public:
  explicit TableCpuidSource(CpuidTable table) : table_(std::move(table)) {}
  explicit TableCpuidSource(const HostProfile& profile) : table_(profile.cpuid) {}
  CpuidRegs query(uint32_t leaf, uint32_t subleaf) const override { return table_.get(leaf, subleaf); }

 private:
  CpuidTable table_;
};

// Every leaf and subleaf that exists: basic 0..max, hypervisor 0x40000000.. (when CPUID.01H:ECX[31]
// says a hypervisor is there, plus further 0x100-spaced ranges that answer), extended 0x80000000..,
// Centaur/Zhaoxin 0xC0000000.. . Indexed leaves follow their own rules: 4, 0xB, 0x1B, 0x1F,
// 0x8000001D, 0x80000026 until the type field is zero (that terminating subleaf included); 7, 0x14,
// 0x17, 0x18, 0x1D, 0x1E, 0x20, 0x24 up to the maximum subleaf in EAX of subleaf 0; 0xD by the
// XCR0|XSS bitmap; 0xF, 0x10, 0x80000020 by the bitmap of valid ResIDs and 0x23 by its bitmap of
// valid subleaves in EAX; 0x12 subleaves 0, 1 then until the type is zero.
CpuidTable enumerate_cpuid(const CpuidSource& source);

// "0-3,8,10-11" (sysfs cpu/node lists) -> {0,1,2,3,8,10,11}; empty on malformed input.
std::vector<unsigned> parse_cpu_list(std::string_view text);
// Host topology from a sysfs tree (root "/sys" normally; tests pass a fake tree).
HostTopology read_topology(const std::string& sysfs_root);

struct ProbeOptions {
  std::string sysfs_root = "/sys";
  std::string procfs_root = "/proc";
  std::string kvm_device = "/dev/kvm";
  const CpuidSource* cpuid = nullptr;  // null: the real instruction, pinned to the first allowed CPU
  bool query_kvm = true;
};

// Probes this machine. Missing /dev/kvm or no permission is not an error: facts say so
// ("kvm_device": "absent" / "permission denied ..."). Facts: hostname, kernel, kernel_build,
// microcode, virt_flags (vmx/svm in /proc/cpuinfo), kvm_device, kvm_api_version, kvm_backend,
// kvm_nested, microarchitecture (cpu_features), cpuid_cpu, tsc_khz_source.
Result<HostProfile> probe_host(const ProbeOptions& options = {});

// `cpumodel host` output: an aligned summary for people, and the whole profile as JSON.
std::string host_summary(const HostProfile& profile);
void profile_to_json(const HostProfile& profile, JsonWriter& w);

}  // namespace cpumodel
