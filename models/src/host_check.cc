#include "cpumodel/models/host_check.h"

namespace cpumodel {

const FeatureSet& kvm_synthesised_features() {
  static const FeatureSet set = [] {
    FeatureSet s;
    // KVM_GET_SUPPORTED_CPUID reports these whatever the host CPU says (Linux
    // arch/x86/kvm/cpuid.c: hypervisor and x2apic are always set, the TSC-deadline timer and
    // ARAT are emulated by the in-kernel LAPIC, and the KVM paravirtual leaf 0x40000001 is KVM's).
    for (const char* n : {"hypervisor", "x2apic", "tsc-deadline", "arat", "kvmclock", "kvm-nopiodelay",
                          "kvm-asyncpf", "kvm-steal-time", "kvm-pv-eoi", "kvmclock-stable-bit"})
      if (auto id = find_feature(n)) s.add(*id);
    return s;
  }();
  return set;
}

FeatureSet host_guest_features(const HostProfile& host) {
  FeatureSet f = host.guest_features();
  if (!host.kvm_cpuid) f |= kvm_synthesised_features();
  return f;
}

FeatureSet unavailable_features(const CpuDefinition& cpu, const HostProfile& host) {
  return cpu.features - host_guest_features(host);
}

const char* compare_result_name(CompareResult r) {
  switch (r) {
    case CompareResult::kIdentical: return "IDENTICAL";
    case CompareResult::kSuperset: return "SUPERSET";
    case CompareResult::kIncompatible: return "INCOMPATIBLE";
  }
  return "?";
}

Comparison compare_to_host(const Expansion& guest, bool vendor_neutral, const HostProfile& host) {
  Comparison c;
  FeatureSet avail = host_guest_features(host);
  c.host_vendor = host.cpuid.vendor();
  c.guest_vendor = guest.cpu.vendor;
  c.vendor_rule_applies = !vendor_neutral && !guest.cpu.vendor.empty();
  c.vendor_match = !c.vendor_rule_applies || c.host_vendor == c.guest_vendor;
  c.missing = guest.cpu.features - avail;
  c.extra = avail - guest.cpu.features;
  if (!c.vendor_match)
    c.reasons.push_back("vendor: the model is " + c.guest_vendor + ", the host is " + c.host_vendor);
  for (FeatureId id : c.missing.ids()) c.reasons.push_back("host lacks " + describe_feature(id));
  if (!c.vendor_match || !c.missing.empty()) c.result = CompareResult::kIncompatible;
  else if (c.extra.empty()) c.result = CompareResult::kIdentical;
  else c.result = CompareResult::kSuperset;
  return c;
}

}  // namespace cpumodel
