// A host profile: what one host's CPU says (raw CPUID), what its KVM can give a guest
// (KVM_GET_SUPPORTED_CPUID + feature MSRs), and facts about the host.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cpumodel/cpuid/features.h"
#include "cpumodel/cpuid/result.h"
#include "cpumodel/cpuid/table.h"

namespace cpumodel {

// Counted like -smp: packages, dies per package, cores per die, threads per core (the largest
// group when they differ, e.g. hybrid parts); NUMA nodes and online CPUs in total.
struct HostTopology {
  unsigned packages = 0, dies = 0, cores = 0, threads = 0, numa_nodes = 0, online_cpus = 0;
  bool known() const { return online_cpus != 0; }
  bool operator==(const HostTopology&) const = default;
};

struct HostProfile {
  std::string name;        // host name, or the file's stem
  std::string source;      // where it came from (path), for messages
  std::string format;      // "yaml", "libvirt-xml", "cpuid-r", "aida64", "probe", "bundle"
  CpuidTable cpuid;        // raw CPUID of the first logical CPU
  MsrMap msrs;             // feature MSRs as the host reports them (0x10a, 0xcf, ...)
  std::optional<CpuidTable> kvm_cpuid;  // KVM_GET_SUPPORTED_CPUID, when known
  std::optional<MsrMap> kvm_msrs;       // KVM's feature MSR values, when known
  HostTopology topology;
  std::optional<double> tsc_khz;
  std::map<std::string, std::string> facts;  // kernel, microcode, backend, microarchitecture...

  // What a guest can be given: KVM's supported set when known, else the raw CPUID.
  const CpuidTable& guest_cpuid() const { return kvm_cpuid ? *kvm_cpuid : cpuid; }
  const MsrMap& guest_msrs() const { return kvm_msrs ? *kvm_msrs : msrs; }
  FeatureSet guest_features() const { return features_of(guest_cpuid(), guest_msrs()); }
  bool operator==(const HostProfile&) const = default;
};

// Reads any supported profile format, sniffed from the content (not the extension).
Result<HostProfile> load_profile(const std::string& path);
// Same, from memory; `name` is used for messages. Errors name `name:line`. Every format must give
// CPUID leaf 0; a profile's `name` defaults to profile_name_from_path(name).
Result<HostProfile> parse_profile(std::string_view text, const std::string& name);
// "yaml", "libvirt-xml", "cpuid-r", "aida64", or "empty"/"binary" (which parse_profile rejects).
std::string sniff_profile_format(std::string_view text);
// The file's stem; libvirt's "x86_64-cpuid-" prefix is dropped ("Xeon-E5-2650").
std::string profile_name_from_path(const std::string& path);
// `cpumodel import`: loads any format and writes OUT_DIR/<name>.yaml atomically (facts gain
// source_file and source_format for non-YAML input). Returns the path written.
Result<std::string> import_profile(const std::string& path, const std::string& out_dir);

// Our YAML format (what `cpumodel host --save` writes); round-trips through parse_profile.
std::string profile_to_yaml(const HostProfile& profile);
// `cpuid -1 -r` text of a table (Debian's cpuid format), CPU 0.
std::string table_to_cpuid_r(const CpuidTable& table);

// Writes a file atomically (temporary + rename): never a partial file, never a truncated one.
Status write_file_atomic(const std::string& path, std::string_view content);
Result<std::string> read_file(const std::string& path, size_t max_bytes = 64u << 20);

}  // namespace cpumodel
