// vCPU and VM state through KVM's ioctls (vcpu_state.h). The orders of the get and set calls are
// the point of this file: each is explained where it is made. They follow what KVM's code needs
// (arch/x86/kvm/x86.c) and what QEMU (target/i386/kvm/kvm.c) and Firecracker (vcpu.rs) learned.
#include "cpumodel/vmm/vcpu_state.h"

#include <cpuid.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>

#include "cpumodel/cpuid/guest_cpuid.h"
#include "cpumodel/vmm/guest_memory.h"

namespace cpumodel::vmm {
namespace {

// The C layout of the uapi structs with flexible arrays (see kvm.cc): in C++ the empty struct of
// __DECLARE_FLEX_ARRAY changes their sizeof, and the ioctl numbers encode it.
constexpr size_t kFlexHeader = 8;
constexpr unsigned long kGetMsrIndexList = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x02, 4);
constexpr unsigned long kGetMsrs = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x88, kFlexHeader);
constexpr unsigned long kSetMsrs = _IOC(_IOC_WRITE, KVMIO, 0x89, kFlexHeader);
constexpr unsigned long kGetCpuid2 = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x91, kFlexHeader);
constexpr unsigned long kGetXsave = _IOC(_IOC_READ, KVMIO, 0xa4, kXsaveLegacySize);
constexpr unsigned long kSetXsave = _IOC(_IOC_WRITE, KVMIO, 0xa5, kXsaveLegacySize);
constexpr unsigned long kGetXsave2 = _IOC(_IOC_READ, KVMIO, 0xcf, kXsaveLegacySize);
constexpr uint32_t kMsrTsc = 0x10;
constexpr double kTscTolerancePpm = 250;  // Linux KVM's tsc_tolerance_ppm
static_assert(sizeof(kvm_lapic_state) == kLapicSize);

// errno values by which a KVM says "I do not have this" rather than "this failed".
bool is_unsupported(int err) { return err == EINVAL || err == ENOTTY || err == ENXIO || err == EOPNOTSUPP; }

std::string errno_text(int err) { return std::string(std::strerror(err)) + " (errno " + std::to_string(err) + ")"; }

// An optional get: fills `out` and returns true, or records why not in `unsupported` (a real
// failure is returned as an error by the caller through `fatal`).
template <class T>
bool try_get(int fd, unsigned long req, const char* name, T& out, std::vector<std::string>& unsupported, int& fatal) {
  if (::ioctl(fd, req, &out) == 0) return true;
  if (is_unsupported(errno)) unsupported.push_back(std::string(name) + ": " + errno_text(errno));
  else fatal = errno;
  return false;
}

Status set_or_fail(int fd, unsigned long req, const void* arg, const std::string& what) {
  if (::ioctl(fd, req, arg) < 0) return kvm_error(what, errno);
  return ok_status();
}

std::vector<uint8_t> msr_buffer(std::span<const MsrValue> msrs) {
  std::vector<uint8_t> buf(kFlexHeader + msrs.size() * sizeof(kvm_msr_entry), 0);
  auto n = static_cast<uint32_t>(msrs.size());
  std::memcpy(buf.data(), &n, sizeof n);
  for (size_t i = 0; i < msrs.size(); ++i) {
    kvm_msr_entry e{};
    e.index = msrs[i].index;
    e.data = msrs[i].value;
    std::memcpy(buf.data() + kFlexHeader + i * sizeof e, &e, sizeof e);
  }
  return buf;
}

// KVM_GET_MSRS stops at the first MSR it cannot read and returns how many it read: that one is
// recorded as unsupported and the rest are read again.
std::vector<MsrValue> read_msrs(const Vcpu& vcpu, const std::vector<uint32_t>& indices,
                                std::vector<std::string>& unsupported) {
  std::vector<MsrValue> todo, out;
  for (uint32_t i : indices) todo.push_back({i, 0});
  while (!todo.empty()) {
    std::vector<uint8_t> buf = msr_buffer(todo);
    int n = ::ioctl(vcpu.fd(), kGetMsrs, buf.data());
    if (n < 0) {
      unsupported.push_back("KVM_GET_MSRS: " + errno_text(errno));
      break;
    }
    for (int i = 0; i < n; ++i) {
      kvm_msr_entry e;
      std::memcpy(&e, buf.data() + kFlexHeader + i * sizeof e, sizeof e);
      out.push_back({e.index, static_cast<uint64_t>(e.data)});
    }
    if (static_cast<size_t>(n) >= todo.size()) break;
    unsupported.push_back("KVM_GET_MSRS: " + describe_msr(todo[n].index) + " not readable");
    todo.erase(todo.begin(), todo.begin() + n + 1);
  }
  return out;
}

// KVM_SET_MSRS stops at the first MSR it refuses. A refused MSR that already holds the saved value
// (KVM refuses some writes of the reset value, e.g. MSR_KVM_ASYNC_PF_INT = 0 without an in-kernel
// LAPIC) costs nothing: skip it and go on; any other refusal is an error naming the MSR.
Status write_msrs(Vcpu& vcpu, std::span<const MsrValue> msrs) {
  while (!msrs.empty()) {
    std::vector<uint8_t> buf = msr_buffer(msrs);
    int n = ::ioctl(vcpu.fd(), kSetMsrs, buf.data());
    if (n < 0) return kvm_error("KVM_SET_MSRS (vCPU " + std::to_string(vcpu.id()) + ")", errno);
    if (static_cast<size_t>(n) >= msrs.size()) break;
    const MsrValue& refused = msrs[n];
    auto now = vcpu.msr(refused.index);
    if (!now || *now != refused.value)
      return host_error("KVM_SET_MSRS (vCPU " + std::to_string(vcpu.id()) + "): this KVM refused " +
                        describe_msr(refused.index) + " = " + hex(refused.value));
    msrs = msrs.subspan(n + 1);
  }
  return ok_status();
}

Status restore_tsc_khz(Vcpu& vcpu, const VcpuState& s, const StateCaps& caps) {
  if (!s.tsc_khz || !caps.tsc_khz) return ok_status();
  int here = ::ioctl(vcpu.fd(), KVM_GET_TSC_KHZ, 0);
  if (here <= 0) return ok_status();
  if (std::fabs(here - static_cast<double>(s.tsc_khz)) / s.tsc_khz * 1e6 <= kTscTolerancePpm) return ok_status();
  if (!caps.tsc_control)
    return host_error("TSC: this host's KVM runs the guest TSC at " + std::to_string(here) + " kHz, the snapshot's at " +
                      std::to_string(s.tsc_khz) + " kHz (more than 250 ppm apart) and it cannot scale "
                      "(no KVM_CAP_TSC_CONTROL): the guest's clocks would jump");
  if (::ioctl(vcpu.fd(), KVM_SET_TSC_KHZ, static_cast<unsigned long>(s.tsc_khz)) < 0)
    return kvm_error("KVM_SET_TSC_KHZ " + std::to_string(s.tsc_khz), errno);
  return ok_status();
}

Status restore_xsave(Vcpu& vcpu, const VcpuState& s, const StateCaps& caps) {
  if (s.xsave.empty() || !caps.xsave) return ok_status();
  // KVM_SET_XSAVE reads as many bytes as KVM_CAP_XSAVE2 says (4096 without it), whatever we hold.
  size_t take = caps.xsave_bytes();
  if (s.xsave.size() > take &&
      std::any_of(s.xsave.begin() + static_cast<ptrdiff_t>(take), s.xsave.end(), [](uint8_t b) { return b != 0; }))
    return host_error("XSAVE: the snapshot's area is " + std::to_string(s.xsave.size()) + " bytes, this KVM takes " +
                      std::to_string(take) + " (KVM_CAP_XSAVE2): a dynamic component such as AMX tile data was in use");
  std::vector<uint8_t> buf(std::max(take, s.xsave.size()), 0);
  std::memcpy(buf.data(), s.xsave.data(), s.xsave.size());
  return set_or_fail(vcpu.fd(), kSetXsave, buf.data(), "KVM_SET_XSAVE");
}

Status restore_xcrs(Vcpu& vcpu, const VcpuState& s, const StateCaps& caps) {
  if (!s.xcrs || !caps.xcrs) return ok_status();
  kvm_xcrs x{};
  for (const auto& [xcr, value] : *s.xcrs) {
    if (x.nr_xcrs >= KVM_MAX_XCRS) break;
    x.xcrs[x.nr_xcrs].xcr = xcr;
    x.xcrs[x.nr_xcrs].value = value;
    ++x.nr_xcrs;
  }
  return set_or_fail(vcpu.fd(), KVM_SET_XCRS, &x, "KVM_SET_XCRS");
}

}  // namespace

Result<std::vector<uint32_t>> kvm_msr_index_list(const Kvm& kvm) {
  uint32_t probe[2] = {0, 0};
  if (::ioctl(kvm.fd(), kGetMsrIndexList, probe) < 0 && errno != E2BIG) return kvm_error("KVM_GET_MSR_INDEX_LIST", errno);
  uint32_t n = probe[0];
  if (n > 16384) return host_error("KVM_GET_MSR_INDEX_LIST: " + std::to_string(n) + " MSRs, more than expected");
  std::vector<uint32_t> buf(n + 1, 0);
  buf[0] = n;
  if (n && ::ioctl(kvm.fd(), kGetMsrIndexList, buf.data()) < 0) return kvm_error("KVM_GET_MSR_INDEX_LIST", errno);
  return std::vector<uint32_t>(buf.begin() + 1, buf.begin() + 1 + std::min(n, buf[0]));
}

Result<CpuidTable> vcpu_cpuid(const Vcpu& vcpu) {
  for (uint32_t room = 256; room <= 4096; room *= 4) {
    std::vector<uint8_t> buf(kFlexHeader + room * sizeof(kvm_cpuid_entry2), 0);
    std::memcpy(buf.data(), &room, sizeof room);
    if (::ioctl(vcpu.fd(), kGetCpuid2, buf.data()) == 0) return from_kvm_cpuid2(buf.data(), buf.size());
    if (errno != E2BIG) return kvm_error("KVM_GET_CPUID2", errno);
  }
  return host_error("KVM_GET_CPUID2: more than 4096 entries");
}

Result<StateCaps> probe_state_caps(const Kvm& kvm, const Vm& vm) {
  StateCaps c;
  auto vm_cap = [&](int cap) { return ::ioctl(vm.fd(), KVM_CHECK_EXTENSION, cap); };
  c.xsave = kvm.has(KVM_CAP_XSAVE);
  int xsave2 = vm_cap(KVM_CAP_XSAVE2);
  c.xsave2_size = xsave2 > 0 ? static_cast<size_t>(xsave2) : 0;
  c.xcrs = kvm.has(KVM_CAP_XCRS);
  c.vcpu_events = kvm.has(KVM_CAP_VCPU_EVENTS);
  c.debugregs = kvm.has(KVM_CAP_DEBUGREGS);
  c.tsc_khz = kvm.has(KVM_CAP_GET_TSC_KHZ);
  c.tsc_control = kvm.has(KVM_CAP_TSC_CONTROL);
  c.adjust_clock = vm_cap(KVM_CAP_ADJUST_CLOCK) > 0;
  c.nested_state = kvm.has(KVM_CAP_NESTED_STATE);
  c.irqchip = vm.has_irqchip();
  auto list = kvm_msr_index_list(kvm);
  if (!list) return list.error();
  c.msr_index_list = std::move(*list);
  return c;
}

Result<VcpuState> save_vcpu_state(const Vcpu& vcpu, const StateCaps& caps) {
  VcpuState s;
  s.index = s.apic_id = vcpu.id();
  int fd = vcpu.fd(), fatal = 0;
  // MP state first: KVM_GET_MP_STATE runs kvm_apic_accept_events(), which may deliver a latched
  // INIT or SIPI and so change the registers and the LAPIC: everything read after it sees that.
  kvm_mp_state mp{};
  if (::ioctl(fd, KVM_GET_MP_STATE, &mp) < 0) return kvm_error("KVM_GET_MP_STATE", errno);
  s.mp_state = mp.mp_state;
  auto regs = vcpu.regs();
  if (!regs) return regs.error();
  s.regs = *regs;
  auto sregs = vcpu.sregs();
  if (!sregs) return sregs.error();
  s.sregs = *sregs;
  if (caps.xsave) {
    // KVM_GET_XSAVE2 when the area can exceed 4 KiB (dynamic features such as AMX tile data);
    // it moves KVM_CAP_XSAVE2 bytes. Otherwise the classic 4 KiB KVM_GET_XSAVE.
    bool big = caps.xsave2_size > kXsaveLegacySize;
    s.xsave.assign(caps.xsave_bytes(), 0);
    if (::ioctl(fd, big ? kGetXsave2 : kGetXsave, s.xsave.data()) < 0) {
      if (!is_unsupported(errno)) return kvm_error(big ? "KVM_GET_XSAVE2" : "KVM_GET_XSAVE", errno);
      s.unsupported.push_back(std::string(big ? "KVM_GET_XSAVE2: " : "KVM_GET_XSAVE: ") + errno_text(errno));
      s.xsave.clear();
    }
    s.xsave2 = big && !s.xsave.empty();
  } else {
    s.unsupported.push_back("XSAVE area: this KVM lacks KVM_CAP_XSAVE");
  }
  if (caps.xcrs) {
    kvm_xcrs x{};
    if (try_get(fd, KVM_GET_XCRS, "KVM_GET_XCRS", x, s.unsupported, fatal)) {
      s.xcrs.emplace();
      for (uint32_t i = 0; i < x.nr_xcrs && i < KVM_MAX_XCRS; ++i) s.xcrs->push_back({x.xcrs[i].xcr, x.xcrs[i].value});
    }
  }
  if (caps.debugregs)
    if (kvm_debugregs d{}; try_get(fd, KVM_GET_DEBUGREGS, "KVM_GET_DEBUGREGS", d, s.unsupported, fatal)) s.debugregs = d;
  if (caps.irqchip) {
    kvm_lapic_state lapic{};
    if (try_get(fd, KVM_GET_LAPIC, "KVM_GET_LAPIC", lapic, s.unsupported, fatal))
      s.lapic.assign(reinterpret_cast<const uint8_t*>(lapic.regs), reinterpret_cast<const uint8_t*>(lapic.regs) + kLapicSize);
  }
  if (fatal) return kvm_error("saving vCPU " + std::to_string(vcpu.id()), fatal);
  if (caps.tsc_khz) {
    int khz = ::ioctl(fd, KVM_GET_TSC_KHZ, 0);
    if (khz > 0) s.tsc_khz = static_cast<uint32_t>(khz);
    else s.unsupported.push_back("KVM_GET_TSC_KHZ: " + errno_text(errno));
  }
  auto cpuid = vcpu_cpuid(vcpu);
  if (!cpuid) return cpuid.error();
  s.cpuid = std::move(*cpuid);
  if (caps.nested_state == false && cpuid_has_any(s.cpuid, "vmx svm"))
    s.unsupported.push_back("nested virtualization state: this KVM lacks KVM_CAP_NESTED_STATE");
  s.msrs = read_msrs(vcpu, msrs_to_save(caps.msr_index_list, s.cpuid), s.unsupported);
  // vCPU events last: the gets above may move state between KVM's queues (KVM_GET_LAPIC syncs
  // posted interrupts into the IRR, KVM_GET_MP_STATE accepts INIT/SIPI); pending and injected
  // exceptions, NMI and interrupt shadow are read once all of that has happened.
  if (caps.vcpu_events) {
    kvm_vcpu_events ev{};
    if (try_get(fd, KVM_GET_VCPU_EVENTS, "KVM_GET_VCPU_EVENTS", ev, s.unsupported, fatal)) s.events = ev;
    if (fatal) return kvm_error("KVM_GET_VCPU_EVENTS", fatal);
  }
  return s;
}

Status restore_vcpu_state(Vcpu& vcpu, const VcpuState& s, const StateCaps& caps) {
  int fd = vcpu.fd();
  // 1. CPUID before everything: KVM checks CR4, EFER, XCR0, IA32_XSS and every MSR write against
  //    the guest's CPUID, and since Linux 5.16 refuses a different CPUID once the vCPU has run.
  if (!s.cpuid.empty())
    if (auto st = vcpu.set_cpuid(s.cpuid); !st) return st;
  // 2. MP state next: whether the vCPU is the BSP and waits for INIT/SIPI (with the in-kernel
  //    LAPIC) decides how the later sets are taken; a vCPU left UNINITIALIZED would reset what follows.
  kvm_mp_state mp{s.mp_state};
  if (auto st = set_or_fail(fd, KVM_SET_MP_STATE, &mp, "KVM_SET_MP_STATE"); !st) return st;
  // 3. TSC frequency before the TSC value: KVM scales the written TSC with the ratio in force.
  if (auto st = restore_tsc_khz(vcpu, s, caps); !st) return st;
  // 4. General registers before the events: KVM_SET_REGS drops any queued exception.
  if (auto st = vcpu.set_regs(s.regs); !st) return st;
  // 5. Special registers before MSRs and LAPIC: EFER and CR4 decide which MSR values are valid,
  //    and the APIC base (x2APIC or xAPIC) decides how KVM_SET_LAPIC reads the register page.
  //    SREGS also carries a pending external interrupt; the events below have the last word.
  if (auto st = vcpu.set_sregs(s.sregs); !st) return st;
  if (auto st = restore_xsave(vcpu, s, caps); !st) return st;
  if (auto st = restore_xcrs(vcpu, s, caps); !st) return st;
  if (s.debugregs && caps.debugregs)
    if (auto st = set_or_fail(fd, KVM_SET_DEBUGREGS, &*s.debugregs, "KVM_SET_DEBUGREGS"); !st) return st;
  // 6. LAPIC before MSRs: IA32_TSC_DEADLINE is only taken by a LAPIC whose timer is in
  //    TSC-deadline mode; written earlier, the deadline is dropped and the guest's timer never fires.
  if (!s.lapic.empty()) {
    if (!caps.irqchip) return host_error("the snapshot has a LAPIC but this VM has no in-kernel irqchip");
    kvm_lapic_state lapic{};
    std::memcpy(lapic.regs, s.lapic.data(), kLapicSize);
    if (auto st = set_or_fail(fd, KVM_SET_LAPIC, &lapic, "KVM_SET_LAPIC"); !st) return st;
  }
  // 7. MSRs: IA32_TSC first and IA32_TSC_DEADLINE last (msrs_to_save's order): KVM arms the
  //    deadline timer by comparing the deadline with the guest TSC, so a deadline written before
  //    the TSC is judged against the wrong clock (Firecracker lost timer interrupts this way).
  std::vector<MsrValue> msrs = s.msrs;
  std::stable_partition(msrs.begin(), msrs.end(), [](const MsrValue& m) { return m.index == kMsrTsc; });
  if (auto st = write_msrs(vcpu, msrs); !st) return st;
  // 8. vCPU events last: injected/pending exceptions, NMI, interrupt shadow and SMI state, which
  //    the sets above (REGS, SREGS) clear or overwrite.
  if (s.events && caps.vcpu_events) {
    kvm_vcpu_events ev = *s.events;
    ev.flags &= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR | KVM_VCPUEVENT_VALID_SHADOW |
                KVM_VCPUEVENT_VALID_SMM | KVM_VCPUEVENT_VALID_PAYLOAD | KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
    if (auto st = set_or_fail(fd, KVM_SET_VCPU_EVENTS, &ev, "KVM_SET_VCPU_EVENTS"); !st) return st;
  }
  // The guest was paused: tell its kvmclock (soft-lockup watchdogs), if it uses one.
  ::ioctl(fd, KVM_KVMCLOCK_CTRL, 0);
  return ok_status();
}

Result<MachineState> save_machine_state(const std::vector<Vcpu>& vcpus, const Vm& vm, const StateCaps& caps) {
  MachineState s;
  for (size_t i = 0; i < vcpus.size(); ++i) {
    auto vs = save_vcpu_state(vcpus[i], caps);
    if (!vs) return Error{"vCPU " + std::to_string(i) + ": " + vs.error().message, vs.error().exit_code};
    vs->index = static_cast<uint32_t>(i);
    s.vcpus.push_back(std::move(*vs));
  }
  auto v = save_vm_state(vm, caps);
  if (!v) return v.error();
  s.vm = std::move(*v);
  return s;
}

Status restore_machine_state(Vm& vm, const MachineState& saved, std::span<const uint32_t> apic_ids,
                             const StateCaps& caps, std::vector<Vcpu>& vcpus) {
  if (apic_ids.size() != saved.vcpus.size())
    return input_error("the snapshot has " + std::to_string(saved.vcpus.size()) + " vCPUs, the machine " +
                       std::to_string(apic_ids.size()));
  for (size_t i = 0; i < saved.vcpus.size(); ++i) {
    auto vcpu = vm.create_vcpu(apic_ids[i]);
    if (!vcpu) return vcpu.error();
    if (auto st = restore_vcpu_state(*vcpu, saved.vcpus[i], caps); !st)
      return Error{"vCPU " + std::to_string(i) + ": " + st.error().message, st.error().exit_code};
    vcpus.push_back(std::move(*vcpu));
  }
  return restore_vm_state(vm, saved.vm, caps);
}

Result<VmState> save_vm_state(const Vm& vm, const StateCaps& caps) {
  VmState s;
  int fd = vm.fd(), fatal = 0;
  if (caps.irqchip) {
    kvm_irqchip chip{};
    bool ok = true;
    for (uint32_t id : {KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE, KVM_IRQCHIP_IOAPIC}) {
      chip = kvm_irqchip{};
      chip.chip_id = id;
      if (!try_get(fd, KVM_GET_IRQCHIP, "KVM_GET_IRQCHIP", chip, s.unsupported, fatal)) {
        ok = false;
        break;
      }
      if (id == KVM_IRQCHIP_PIC_MASTER) s.pic_master = chip.chip.pic;
      if (id == KVM_IRQCHIP_PIC_SLAVE) s.pic_slave = chip.chip.pic;
      if (id == KVM_IRQCHIP_IOAPIC) s.ioapic = chip.chip.ioapic;
    }
    s.irqchip = ok;
    // The PIT exists only when the VMM created one (KVM_CREATE_PIT2): ENXIO means none.
    kvm_pit_state2 pit{};
    if (::ioctl(fd, KVM_GET_PIT2, &pit) == 0) s.pit = pit;
    else if (errno != ENXIO) s.unsupported.push_back("KVM_GET_PIT2: " + errno_text(errno));
  }
  if (fatal) return kvm_error("saving the VM's irqchip", fatal);
  if (caps.adjust_clock)
    if (kvm_clock_data c{}; try_get(fd, KVM_GET_CLOCK, "KVM_GET_CLOCK", c, s.unsupported, fatal)) s.clock = c;
  if (fatal) return kvm_error("KVM_GET_CLOCK", fatal);
  return s;
}

Status restore_vm_state(Vm& vm, const VmState& s, const StateCaps& caps) {
  int fd = vm.fd();
  if (s.irqchip) {
    if (!caps.irqchip) return host_error("the snapshot has an in-kernel irqchip but this VM has none");
    kvm_irqchip chip{};
    chip.chip_id = KVM_IRQCHIP_PIC_MASTER;
    chip.chip.pic = s.pic_master;
    if (auto st = set_or_fail(fd, KVM_SET_IRQCHIP, &chip, "KVM_SET_IRQCHIP (PIC master)"); !st) return st;
    chip.chip_id = KVM_IRQCHIP_PIC_SLAVE;
    chip.chip.pic = s.pic_slave;
    if (auto st = set_or_fail(fd, KVM_SET_IRQCHIP, &chip, "KVM_SET_IRQCHIP (PIC slave)"); !st) return st;
    chip = kvm_irqchip{};
    chip.chip_id = KVM_IRQCHIP_IOAPIC;
    chip.chip.ioapic = s.ioapic;
    if (auto st = set_or_fail(fd, KVM_SET_IRQCHIP, &chip, "KVM_SET_IRQCHIP (IOAPIC)"); !st) return st;
  }
  if (s.pit) {
    kvm_pit_config config{};
    config.flags = KVM_PIT_SPEAKER_DUMMY;
    if (::ioctl(fd, KVM_CREATE_PIT2, &config) < 0 && errno != EEXIST) return kvm_error("KVM_CREATE_PIT2", errno);
    if (auto st = set_or_fail(fd, KVM_SET_PIT2, &*s.pit, "KVM_SET_PIT2"); !st) return st;
  }
  // kvmclock continues from the saved value (flags 0: no KVM_CLOCK_REALTIME), as if the guest had
  // been paused: the snapshot's age is not added to the guest's clock.
  if (s.clock && caps.adjust_clock) {
    kvm_clock_data c{};
    c.clock = s.clock->clock;
    if (auto st = set_or_fail(fd, KVM_SET_CLOCK, &c, "KVM_SET_CLOCK"); !st) return st;
  }
  return ok_status();
}

HostFingerprint host_fingerprint(const Kvm& kvm, uint32_t tsc_khz) {
  HostFingerprint f;
  unsigned a, b, c, d;
  __cpuid(0, a, b, c, d);
  char vendor[13] = {};
  std::memcpy(vendor, &b, 4);
  std::memcpy(vendor + 4, &d, 4);
  std::memcpy(vendor + 8, &c, 4);
  f.vendor = vendor;
  __cpuid(1, a, b, c, d);
  f.signature = a;
  __cpuid(0x80000000, a, b, c, d);
  if (a >= 0x80000004) {
    char brand[49] = {};
    for (unsigned i = 0; i < 3; ++i) {
      __cpuid(0x80000002 + i, a, b, c, d);
      for (unsigned r = 0; unsigned v : {a, b, c, d}) std::memcpy(brand + 16 * i + 4 * r++, &v, 4);
    }
    f.brand = brand;
    f.brand.erase(0, f.brand.find_first_not_of(' '));
  }
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);)
    if (line.rfind("microcode", 0) == 0) {
      f.microcode = line.substr(line.find(':') + 2);
      break;
    }
  utsname u{};
  if (::uname(&u) == 0) {
    f.kernel = std::string(u.sysname) + " " + u.release + " " + u.machine;
    f.hostname = u.nodename;
  }
  f.kvm_backend = backend_name(kvm.backend());
  f.tsc_khz = tsc_khz;
  f.tsc_scaling = kvm.has(KVM_CAP_TSC_CONTROL);
  if (auto list = kvm_msr_index_list(kvm)) f.msr_index_list = std::move(*list);
  return f;
}

}  // namespace cpumodel::vmm
