// Which MSRs a snapshot saves, and the XSAVE component names: tables, written once, read by the
// saver (vmm/src/vcpu_state.cc), `state inspect` and migrate-check --state.
#include <algorithm>
#include <cstdio>
#include <sstream>

#include "cpumodel/cpuid/features.h"
#include "cpumodel/migrate/snapshot.h"

namespace cpumodel {
namespace {

// Meaningful to save: state the guest writes or the VMM configured, which KVM lets user space
// write back (Linux arch/x86/kvm/x86.c msrs_to_save_base/emulated_msrs_all and the per-vendor
// get/set_msr; Intel SDM vol. 4 for the indices). Left out on purpose: MSRs that live in
// KVM_SET_SREGS (EFER, APIC base, FS/GS base), write-only commands (PRED_CMD, FLUSH_CMD), the
// PMU (counters are not migrated by this VMM), machine-check banks and MCG_CAP/MCG_CTL (set up
// by KVM_X86_SETUP_MCE), VMX capability MSRs (nested state is not saved), Hyper-V MSRs.
// `needs`: any one of these guest features makes the MSR exist for the guest.
constexpr StateMsr kMsrs[] = {
    {0x10, 1, "IA32_TSC", "", true},
    {0x11, 1, "MSR_KVM_WALL_CLOCK", "kvmclock", true},
    {0x12, 1, "MSR_KVM_SYSTEM_TIME", "kvmclock", true},
    {0x34, 1, "MSR_SMI_COUNT", "", true},
    {0x3a, 1, "IA32_FEATURE_CONTROL", "vmx", true},
    {0x3b, 1, "IA32_TSC_ADJUST", "tsc-adjust", true},
    {0x48, 1, "IA32_SPEC_CTRL", "spec-ctrl ibrs amd-ssbd", true},
    {0x8b, 1, "IA32_UCODE_REV", "", true},
    {0xce, 1, "MSR_PLATFORM_INFO", "", true},
    {0xe1, 1, "IA32_UMWAIT_CONTROL", "waitpkg", true},
    {0x10a, 1, "IA32_ARCH_CAPABILITIES", "arch-capabilities", true},
    {0x122, 1, "IA32_TSX_CTRL", "tsx-ctrl", true},
    {0x140, 1, "MSR_MISC_FEATURES_ENABLES", "", true},
    {0x174, 1, "IA32_SYSENTER_CS", "", true},
    {0x175, 1, "IA32_SYSENTER_ESP", "", true},
    {0x176, 1, "IA32_SYSENTER_EIP", "", true},
    {0x17a, 1, "IA32_MCG_STATUS", "mce", true},
    {0x1a0, 1, "IA32_MISC_ENABLE", "", true},
    {0x1c4, 1, "IA32_XFD", "xfd", true},
    {0x1c5, 1, "IA32_XFD_ERR", "xfd", true},
    {0x1d9, 1, "IA32_DEBUGCTL", "", true},
    {0x1fc, 1, "MSR_IA32_POWER_CTL", "", true},
    {0x200, 16, "IA32_MTRR_PHYSBASE0..PHYSMASK7", "mtrr", false},
    {0x250, 1, "IA32_MTRR_FIX64K_00000", "mtrr", false},
    {0x258, 2, "IA32_MTRR_FIX16K_80000..A0000", "mtrr", false},
    {0x268, 8, "IA32_MTRR_FIX4K_C0000..F8000", "mtrr", false},
    {0x277, 1, "IA32_PAT", "", true},
    {0x2ff, 1, "IA32_MTRR_DEF_TYPE", "mtrr", false},
    {0x345, 1, "IA32_PERF_CAPABILITIES", "pdcm", true},
    {0x6a0, 1, "IA32_U_CET", "cet-ss cet-ibt", true},
    {0x6a2, 1, "IA32_S_CET", "cet-ss cet-ibt", true},
    {0x6a4, 4, "IA32_PL0_SSP..PL3_SSP", "cet-ss", true},
    {0x6a8, 1, "IA32_INTERRUPT_SSP_TABLE_ADDR", "cet-ss", true},
    {0x6e0, 1, "IA32_TSC_DEADLINE", "tsc-deadline", true},
    {0x6e1, 1, "IA32_PKRS", "pks", true},
    {0xd90, 1, "IA32_BNDCFGS", "mpx", true},
    {0xda0, 1, "IA32_XSS", "xsaves", true},
    {0x4b564d00, 1, "MSR_KVM_WALL_CLOCK_NEW", "kvmclock2", true},
    {0x4b564d01, 1, "MSR_KVM_SYSTEM_TIME_NEW", "kvmclock2", true},
    {0x4b564d02, 1, "MSR_KVM_ASYNC_PF_EN", "kvm-asyncpf", true},
    {0x4b564d03, 1, "MSR_KVM_STEAL_TIME", "kvm-steal-time", true},
    {0x4b564d04, 1, "MSR_KVM_PV_EOI_EN", "kvm-pv-eoi", true},
    {0x4b564d05, 1, "MSR_KVM_POLL_CONTROL", "kvm-poll-control", true},
    {0x4b564d06, 1, "MSR_KVM_ASYNC_PF_INT", "kvm-asyncpf-int", true},
    {0x4b564d07, 1, "MSR_KVM_ASYNC_PF_ACK", "kvm-asyncpf-int", true},
    {0xc0000081, 1, "MSR_STAR", "", true},
    {0xc0000082, 1, "MSR_LSTAR", "lm", true},
    {0xc0000083, 1, "MSR_CSTAR", "lm", true},
    {0xc0000084, 1, "MSR_SYSCALL_MASK", "lm", true},
    {0xc0000102, 1, "MSR_KERNEL_GS_BASE", "lm", true},
    {0xc0000103, 1, "MSR_TSC_AUX", "rdtscp rdpid", true},
    {0xc0010015, 1, "MSR_K7_HWCR", "", true},
    {0xc0010117, 1, "MSR_VM_HSAVE_PA", "svm", true},
    {0xc001011f, 1, "MSR_AMD64_VIRT_SPEC_CTRL", "virt-ssbd", true},
};

constexpr uint32_t kTscDeadline = 0x6e0;

const char* const kXsaveComponents[] = {"x87", "sse", "avx", "bndregs", "bndcsr", "opmask", "zmm_hi256",
                                        "hi16_zmm", "pt", "pkru", "pasid", "cet_u", "cet_s", "hdc",
                                        "uintr", "lbr", "hwp", "xtilecfg", "xtiledata", "apx"};

}  // namespace

std::span<const StateMsr> state_msr_table() { return kMsrs; }

const StateMsr* find_state_msr(uint32_t index) {
  for (const auto& m : kMsrs)
    if (index >= m.index && index - m.index < m.count) return &m;
  return nullptr;
}

std::string describe_msr(uint32_t index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "MSR %XH", index);
  const StateMsr* m = find_state_msr(index);
  if (!m) return buf;
  std::string name = m->name;
  if (m->count > 1) name += " +" + std::to_string(index - m->index);
  return std::string(buf) + " (" + name + ")";
}

bool cpuid_has_any(const CpuidTable& guest_cpuid, const char* needs) {
  if (!needs || !*needs) return true;
  FeatureSet have = features_of(guest_cpuid);
  std::istringstream in(needs);
  for (std::string name; in >> name;)
    if (have.has(name)) return true;
  return false;
}

std::vector<uint32_t> msrs_to_save(std::span<const uint32_t> kvm_index_list, const CpuidTable& guest_cpuid) {
  FeatureSet have = features_of(guest_cpuid);
  auto wanted = [&](const StateMsr& m) {
    std::istringstream in(m.needs);
    bool any = !*m.needs;
    for (std::string name; !any && in >> name;) any = have.has(name);
    return any;
  };
  std::vector<uint32_t> out;
  bool deadline = false;
  for (const auto& m : kMsrs) {
    if (!wanted(m)) continue;
    for (uint32_t i = m.index; i < m.index + m.count; ++i) {
      if (m.listed && std::find(kvm_index_list.begin(), kvm_index_list.end(), i) == kvm_index_list.end()) continue;
      if (i == kTscDeadline) deadline = true;  // restored after IA32_TSC: see vcpu_state.cc
      else out.push_back(i);
    }
  }
  if (deadline) out.push_back(kTscDeadline);
  return out;
}

std::string xsave_component(unsigned bit) {
  return bit < std::size(kXsaveComponents) ? kXsaveComponents[bit] : "component " + std::to_string(bit);
}

std::vector<std::string> xsave_components(uint64_t mask) {
  std::vector<std::string> out;
  for (unsigned b = 0; b < 64; ++b)
    if (mask >> b & 1) out.push_back(xsave_component(b));
  return out;
}

}  // namespace cpumodel
