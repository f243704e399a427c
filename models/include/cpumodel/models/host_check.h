// Judging models against a host: QEMU's "unavailable-features" (list --host) and libvirt-style
// comparison (compare SPEC --host). Pure functions over feature sets.
#pragma once

#include <string>
#include <vector>

#include "cpumodel/cpuid/features.h"
#include "cpumodel/cpuid/profile.h"
#include "cpumodel/models/catalog.h"

namespace cpumodel {

// What a guest can be given on `host`: KVM's supported set when the profile has it; otherwise the
// raw CPUID plus the bits KVM synthesises on every host (hypervisor, x2apic, tsc-deadline, arat;
// Linux arch/x86/kvm/cpuid.c), since a bare-metal dump never shows those.
FeatureSet host_guest_features(const HostProfile& host);
// The bits of host_guest_features() that come from KVM's rule rather than from the dump.
const FeatureSet& kvm_synthesised_features();

// Features of `cpu` the host cannot give (QEMU's query-cpu-definitions unavailable-features).
FeatureSet unavailable_features(const CpuDefinition& cpu, const HostProfile& host);

enum class CompareResult { kIdentical, kSuperset, kIncompatible };
const char* compare_result_name(CompareResult r);  // "IDENTICAL", ...

struct Comparison {
  CompareResult result = CompareResult::kIncompatible;
  bool vendor_match = true;     // false only when the vendor rule applies and differs
  bool vendor_rule_applies = true;
  std::string host_vendor, guest_vendor;
  FeatureSet missing;           // in the guest CPU, not available on the host
  FeatureSet extra;             // available on the host, not in the guest CPU
  std::vector<std::string> reasons;  // one line each: "host lacks CPUID.07H:EBX.avx2 [bit 5]"
};

// libvirt's meaning: IDENTICAL = the host offers exactly the guest CPU's features (and vendor);
// SUPERSET = the host offers all of them and more; INCOMPATIBLE = the host lacks at least one,
// or the vendor differs for a vendor-specific model (vendor-neutral models: qemu32/64, kvm32/64,
// x86-64-vN, base, host, max never fail on vendor).
Comparison compare_to_host(const Expansion& guest, bool vendor_neutral, const HostProfile& host);

}  // namespace cpumodel
