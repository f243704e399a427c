// Get and set the full state of a vCPU and of a VM through KVM's ioctls, into and out of the plain
// state types of a snapshot (cpumodel/migrate/snapshot.h), in the order KVM needs (vcpu_state.cc
// says why each order matters). What the backend refuses is recorded, not fatal: on kvm_pvm, for
// example, there is no nested state, and the LAPIC exists only with the in-kernel irqchip.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cpumodel/cpuid/result.h"
#include "cpumodel/migrate/snapshot.h"
#include "cpumodel/vmm/kvm.h"

namespace cpumodel::vmm {

// What this KVM can save and restore, probed once per VM.
struct StateCaps {
  bool xsave = false;             // KVM_CAP_XSAVE
  size_t xsave2_size = 0;         // KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) on the VM (0: no XSAVE2)
  bool xcrs = false;              // KVM_CAP_XCRS
  bool vcpu_events = false;       // KVM_CAP_VCPU_EVENTS
  bool debugregs = false;         // KVM_CAP_DEBUGREGS
  bool tsc_khz = false;           // KVM_CAP_GET_TSC_KHZ
  bool tsc_control = false;       // KVM_CAP_TSC_CONTROL: KVM_SET_TSC_KHZ scales the guest TSC
  bool adjust_clock = false;      // KVM_CAP_ADJUST_CLOCK: kvmclock get/set
  bool nested_state = false;      // KVM_CAP_NESTED_STATE (not saved by this version)
  bool irqchip = false;           // the VM has the in-kernel PIC/IOAPIC/LAPIC
  std::vector<uint32_t> msr_index_list;  // KVM_GET_MSR_INDEX_LIST
  // How many bytes KVM_GET_XSAVE2 / KVM_SET_XSAVE move: the XSAVE2 size, else 4096.
  size_t xsave_bytes() const { return xsave2_size > kXsaveLegacySize ? xsave2_size : kXsaveLegacySize; }
};

Result<StateCaps> probe_state_caps(const Kvm& kvm, const Vm& vm);

// The MSR index list KVM reports (KVM_GET_MSR_INDEX_LIST on /dev/kvm).
Result<std::vector<uint32_t>> kvm_msr_index_list(const Kvm& kvm);
// KVM_GET_CPUID2: the CPUID table in force on a vCPU.
Result<CpuidTable> vcpu_cpuid(const Vcpu& vcpu);

// One vCPU. The vCPU must not be running (its thread parked or gone): KVM_GET/SET_VCPU_EVENTS
// and the LAPIC are not consistent while it runs.
Result<VcpuState> save_vcpu_state(const Vcpu& vcpu, const StateCaps& caps);
Status restore_vcpu_state(Vcpu& vcpu, const VcpuState& state, const StateCaps& caps);

// The VM's device state: PIC master/slave and IOAPIC (with the irqchip), PIT (when created), kvmclock.
Result<VmState> save_vm_state(const Vm& vm, const StateCaps& caps);
Status restore_vm_state(Vm& vm, const VmState& state, const StateCaps& caps);

// A whole machine, for Machine and LinuxVm alike. Saving: every vCPU's state (vCPU i at index i,
// errors named "vCPU i"), then the VM's. Restoring: for each saved vCPU i, a new vCPU with APIC ID
// apic_ids[i] gets its state (appended to `vcpus`), then the VM gets its state; the vCPUs come
// first because the irqchip's and kvmclock's state refers to them.
Result<MachineState> save_machine_state(const std::vector<Vcpu>& vcpus, const Vm& vm, const StateCaps& caps);
Status restore_machine_state(Vm& vm, const MachineState& saved, std::span<const uint32_t> apic_ids,
                             const StateCaps& caps, std::vector<Vcpu>& vcpus);

// This host as the writer of a snapshot: vendor, signature, brand, microcode, kernel, backend.
HostFingerprint host_fingerprint(const Kvm& kvm, uint32_t tsc_khz);

}  // namespace cpumodel::vmm
