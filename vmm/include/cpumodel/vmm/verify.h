// `cpumodel verify`: run the probe guest on every vCPU with the intended CPUID tables and compare
// what each vCPU saw with what was intended, bit by bit, each difference named
// ("CPUID.07H:EBX.avx2 [bit 5]: intended 0, guest saw 1 (forced by kvm_pvm)").
//
// "Intended" is what KVM's CPUID semantics make of the table (arch/x86/kvm/cpuid.c): absent leaves
// read as zero, leaves beyond a range's max read as the max basic leaf (not on AMD/Hygon), leaf
// 0BH/1FH subleaves beyond the table keep CL and EDX; plus the bits that follow vCPU state
// (kvm_update_cpuid_runtime): OSXSAVE <- CR4.OSXSAVE, OSPKE <- CR4.PKE, APIC <- APIC base enable,
// XSAVE sizes (0DH:EBX) <- XCR0/XSS; and each vCPU's own APIC ID in 01H:EBX[31:24] and 0BH/1FH:EDX.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cpumodel/cpuid/guest_cpuid.h"
#include "cpumodel/cpuid/profile.h"
#include "cpumodel/cpuid/result.h"
#include "cpumodel/cpuid/table.h"
#include "cpumodel/vmm/cpuset.h"
#include "cpumodel/vmm/kvm.h"
#include "cpumodel/vmm/machine.h"
#include "cpumodel/vmm/probe.h"

namespace cpumodel::vmm {

// vCPU state that CPUID output depends on.
struct VcpuCpuidState {
  uint32_t apic_id = 0;
  uint64_t cr4 = 0;
  uint64_t xcr0 = 1;
  uint64_t xss = 0;
  uint64_t apic_base = 0xfee00800;
  bool host_has_pku = true;    // KVM updates OSPKE only when the host has PKU
  bool host_has_xsave = true;  // ... and OSXSAVE only when the host has XSAVE
};

// What the guest should read for CPUID(leaf, subleaf) after KVM_SET_CPUID2(table).
CpuidRegs expected_cpuid(const CpuidTable& table, uint32_t leaf, uint32_t subleaf, const VcpuCpuidState& state);
// XSAVE area size for the components in `xfeatures` (KVM's xstate_required_size), from the
// component sizes/offsets of `table` leaf 0DH.
uint32_t xsave_size(const CpuidTable& table, uint64_t xfeatures, bool compacted);

struct BitDifference {
  uint32_t leaf = 0, subleaf = 0;
  Reg reg = Reg::kEax;
  unsigned bit = 0;
  std::string feature;   // canonical name, or "" for an unnamed bit
  std::string where;     // "CPUID.07H:EBX.avx2 [bit 5]" / "CPUID.0DH:EBX[bit 9]"
  bool intended = false;
  bool seen = false;
  std::string cause;     // "forced by kvm_pvm" (the guest saw the host's bit) or "changed by kvm_pvm"
};

// The pure comparison: every record the probe brought back against expected_cpuid(). `host` is
// the host's own CPUID, used only to say whether a bit is the host's ("forced").
std::vector<BitDifference> compare_probe(const CpuidTable& intended, const std::vector<ProbeRecord>& seen,
                                         const VcpuCpuidState& state, Backend backend,
                                         const CpuidTable* host = nullptr);

struct VcpuVerify {
  VcpuPlace place;
  pid_t tid = 0;
  int host_cpu = -1;      // CPU the vCPU thread last ran on
  CpuSet allowed;
  bool pinned = false;
  size_t leaves_probed = 0;
  std::vector<BitDifference> differences;
};

struct VerifyReport {
  Backend backend = Backend::kUnknown;
  CpuMode mode = CpuMode::kLong64;
  bool identical = true;
  std::vector<VcpuVerify> vcpus;
  double vm_ms = 0;       // VM creation to teardown (ProbeRun::total_ms)
};

struct VerifyOptions {
  std::string device = default_kvm_device();
  double timeout_s = 10;
  PinMap pins;            // checked here: bad vCPUs/CPUs are exit 2
  std::function<void(unsigned, pid_t)> on_vcpu_exit;
  // The host's own CPUID table when the caller already read it (kvm_host_profile's `cpuid`): the
  // "forced by" attribution reads it instead of running CPUID again (each one traps when the host
  // is itself a VM: ~2.2 us on kvm_pvm's host). Keys it lacks are read with the instruction.
  const CpuidTable* host_cpuid = nullptr;
  std::shared_ptr<PreparedVm> prepared;  // the probe VM made ahead (prepare_vm, probe_ram_size)
  Teardown* teardown = nullptr;          // destroys the probe VM while the caller goes on (machine.h)
};

// Runs the probe with the guest's tables (one per vCPU, as build_guest_cpuid produced them).
Result<VerifyReport> verify_guest(const GuestCpuid& guest, const VerifyOptions& options);

// This host as a VMM sees it, for building the guest tables: the CPUID instruction's table and
// KVM_GET_SUPPORTED_CPUID, facts["kvm_backend"]. Exit 3 when /dev/kvm cannot be used.
Result<HostProfile> kvm_host_profile(const std::string& device = default_kvm_device());
// KVM's half of it alone: KVM_GET_SUPPORTED_CPUID and the backend, with `cpuid` left empty for the
// caller to fill with enumerate_cpuid(HostCpuidSource()), which may run on another thread meanwhile
// (on a host that is itself a VM each CPUID traps, ~1.5 us: ~0.15 ms for a whole table).
Result<HostProfile> kvm_support_profile(const std::string& device = default_kvm_device());

// The host's own CPUID (the cpuid instruction here), for "forced" attribution; keys `known` has
// are taken from it.
CpuidTable host_cpuid_for(const CpuidTable& like, const CpuidTable* known = nullptr);

// For people: header, the vCPU map, then differences grouped by vCPUs that share them.
std::string format_verify(const VerifyReport& report, const std::string& title);
// JSON per CLI.md: backend, identical, vcpus[] {index, tid, host_cpu, apic_id, differences[] of
// leaf, subleaf, register, bit, feature, intended, seen} (+ cause, socket/die/core/thread, pinned).
std::string verify_json(const VerifyReport& report, const std::string& model);
// The vCPU map alone: vCPU, TID, APIC ID, socket/die/core/thread, pinned set, last CPU.
std::string format_vcpu_map(const VerifyReport& report);

}  // namespace cpumodel::vmm
