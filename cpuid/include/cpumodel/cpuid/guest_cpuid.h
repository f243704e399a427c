// The guest CPUID builder: a resolved CPU definition + topology + the host's KVM-supported
// CPUID -> one CpuidTable per vCPU, ready for KVM_SET_CPUID2. Pure functions over values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cpumodel/cpuid/cpu_definition.h"
#include "cpumodel/cpuid/profile.h"
#include "cpumodel/cpuid/result.h"
#include "cpumodel/cpuid/smp.h"
#include "cpumodel/cpuid/table.h"

namespace cpumodel {

// Where a vCPU sits, with QEMU's APIC ID layout (package | die | core | thread, each field
// ceil(log2(count)) bits wide).
struct VcpuPlace {
  unsigned index = 0;
  uint32_t apic_id = 0;
  unsigned socket = 0, die = 0, core = 0, thread = 0;
};

std::vector<VcpuPlace> vcpu_places(const SmpConfig& smp);  // maxcpus entries, index order
uint32_t apic_id_of(const SmpConfig& smp, unsigned index);

struct GuestCpuidOptions {
  bool check = true;     // filter against the host's KVM-supported CPUID, warning per bit
  bool enforce = false;  // fail (exit 3) instead of filtering
};

struct GuestCpuid {
  std::vector<VcpuPlace> vcpus;        // the `cpus` present at start
  std::vector<CpuidTable> tables;      // one per vCPU, same order
  std::vector<std::string> warnings;   // "host doesn't support requested feature: CPUID.07H:EBX.avx2 [bit 5]"
  FeatureSet dropped;                  // features filtered because the host lacks them
  FeatureSet features;                 // the named features the guest gets (after filtering)
  MsrMap msrs;                         // feature MSR values the guest gets (0x10a, 0xcf, 0x345)
  SmpConfig smp;                       // the topology the tables describe
};

// host may be null: no filtering, host-derived values (XSAVE sizes, phys bits) from defaults.
Result<GuestCpuid> build_guest_cpuid(const CpuDefinition& cpu, const SmpConfig& smp,
                                     const HostProfile* host, const GuestCpuidOptions& options = {});

// struct kvm_cpuid2 as bytes (header + entries, KVM_CPUID_FLAG_SIGNIFCANT_INDEX on indexed
// leaves), ready for the KVM_SET_CPUID2 ioctl.
std::vector<uint8_t> to_kvm_cpuid2(const CpuidTable& table);
CpuidTable from_kvm_cpuid2(const uint8_t* data, size_t size);
// The kvm_cpuid_entry2 flags QEMU gives a leaf (KVM_CPUID_FLAG_SIGNIFCANT_INDEX, stateful leaf 2).
uint32_t kvm_cpuid_flags(uint32_t leaf);

// Output formats of `cpumodel cpuid`.
// JSON per ../shared/CLI.md: {"model", "smp", "warnings", "vcpus": [{index, apic_id, socket, die,
// core, thread, leaves: [{leaf, subleaf, eax, ebx, ecx, edx}]}]}.
std::string guest_cpuid_json(const GuestCpuid& guest, const std::string& model,
                             const std::vector<size_t>& which);
// For people: topology, caches, address sizes, XSAVE, features by name; then the raw leaves.
std::string describe_guest_cpuid(const CpuidTable& table, const VcpuPlace& place,
                                 const SmpConfig& smp);
// The kvm_cpuid2 buffer as KVM gets it: header, then one line per entry (function, index, flags,
// eax..edx in hex), then a hex dump of the bytes.
std::string kvm_cpuid2_dump(const CpuidTable& table);

}  // namespace cpumodel
