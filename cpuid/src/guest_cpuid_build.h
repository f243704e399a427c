// The guest CPUID builder's plan (everything decided once for all vCPUs) and the leaf emitters
// that turn it into a table (guest_cpuid_leaves.cc). Not installed.
#pragma once

#include <string>
#include <vector>

#include "guest_cpuid_internal.h"

namespace cpumodel::guest {

struct Build {
  Build(const CpuDefinition& c, const HostProfile* h, const SmpConfig& smp) : cpu(c), host(h), topo(smp) {}
  const CpuDefinition& cpu;
  const HostProfile* host;
  Topology topo;
  FeatureSet features;   // after filtering
  FeatureSet requested;  // before filtering (QEMU derives the XSAVE components from these)
  CpuidTable words;     // the feature words' values (named bits plus derived ones), nothing else
  MsrMap msrs;          // feature MSR values
  bool intel = false, amd = false;
  uint32_t version = 0;  // CPUID.01H:EAX
  uint32_t level = 0, xlevel = 0, xlevel2 = 0, func7 = 0;
  uint64_t xcr0 = 0, xss_words = 0;
  std::vector<XsaveComponent> comps;  // by component index, sizes/offsets resolved
  CacheViews caches;
  unsigned phys_bits = 40, virt_bits = 48;

  bool has(const char* name) const { return features.has(name); }
  unsigned logical_per_die() const { return topo.cores * topo.threads; }
  CpuidRegs word_regs(uint32_t leaf, uint32_t subleaf) const { return words.get(leaf, subleaf); }
};

// Every entry that does not depend on the vCPU, in QEMU's KVM_SET_CPUID2 entry set.
CpuidTable build_template(const Build& b);
// The APIC-ID-dependent values of one vCPU (leaf 1 EBX[31:24], 0xB/0x1F EDX, 0x8000001E).
void apply_vcpu(const Build& b, const VcpuPlace& place, CpuidTable& table);

}  // namespace cpumodel::guest
