// Snapshot <-> cpumodel.snap.Snapshot (state.proto). Registers are copied field by field; the
// field lists are written once (X-macros) and serve both directions.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/stubs/logging.h>

#include <algorithm>
#include <exception>
#include <tuple>

#include "snapshot_internal.h"
#include "state.pb.h"

namespace cpumodel::internal {
namespace {

#define CPUMODEL_SEGMENT_FIELDS(X) X(base) X(limit) X(selector) X(type) X(present) X(dpl) X(db) X(s) X(l) X(g) X(avl) X(unusable)
#define CPUMODEL_REGS_FIELDS(X) \
  X(rax) X(rbx) X(rcx) X(rdx) X(rsi) X(rdi) X(rsp) X(rbp) X(r8) X(r9) X(r10) X(r11) X(r12) X(r13) X(r14) X(r15) X(rip) X(rflags)
#define CPUMODEL_SREGS_FIELDS(X) X(cr0) X(cr2) X(cr3) X(cr4) X(cr8) X(efer) X(apic_base)
#define CPUMODEL_SREGS_SEGMENTS(X) X(cs) X(ds) X(es) X(fs) X(gs) X(ss) X(tr) X(ldt)
#define CPUMODEL_PIC_FIELDS(X)                                                                               \
  X(last_irr) X(irr) X(imr) X(isr) X(priority_add) X(irq_base) X(read_reg_select) X(poll) X(special_mask) \
  X(init_state) X(auto_eoi) X(rotate_on_auto_eoi) X(special_fully_nested_mode) X(init4) X(elcr) X(elcr_mask)
#define CPUMODEL_PIT_FIELDS(X)                                                                                 \
  X(count) X(latched_count) X(count_latched) X(status_latched) X(status) X(read_state) X(write_state) \
  X(write_latch) X(rw_mode) X(mode) X(bcd) X(gate) X(count_load_time)
// kvm_vcpu_events member path, proto field.
#define CPUMODEL_EVENT_FIELDS(X)                                                                       \
  X(exception.injected, exception_injected) X(exception.nr, exception_nr)                             \
  X(exception.has_error_code, exception_has_error_code) X(exception.pending, exception_pending)       \
  X(exception.error_code, exception_error_code) X(interrupt.injected, interrupt_injected)             \
  X(interrupt.nr, interrupt_nr) X(interrupt.soft, interrupt_soft) X(interrupt.shadow, interrupt_shadow) \
  X(nmi.injected, nmi_injected) X(nmi.pending, nmi_pending) X(nmi.masked, nmi_masked)                 \
  X(sipi_vector, sipi_vector) X(flags, flags) X(smi.smm, smi_smm) X(smi.pending, smi_pending)         \
  X(smi.smm_inside_nmi, smi_smm_inside_nmi) X(smi.latched_init, smi_latched_init)                     \
  X(triple_fault.pending, triple_fault_pending) X(exception_has_payload, exception_has_payload)       \
  X(exception_payload, exception_payload)

#define CPUMODEL_TO(f) p->set_##f(v.f);
#define CPUMODEL_FROM(f) v.f = static_cast<decltype(v.f)>(p.f());

void to_pb(const kvm_segment& v, snap::Segment* p) { CPUMODEL_SEGMENT_FIELDS(CPUMODEL_TO) }
void from_pb(const snap::Segment& p, kvm_segment& v) { CPUMODEL_SEGMENT_FIELDS(CPUMODEL_FROM) }
void to_pb(const kvm_regs& v, snap::Regs* p) { CPUMODEL_REGS_FIELDS(CPUMODEL_TO) }
void from_pb(const snap::Regs& p, kvm_regs& v) { CPUMODEL_REGS_FIELDS(CPUMODEL_FROM) }
void to_pb(const kvm_pic_state& v, snap::Pic* p) { CPUMODEL_PIC_FIELDS(CPUMODEL_TO) }
void from_pb(const snap::Pic& p, kvm_pic_state& v) { CPUMODEL_PIC_FIELDS(CPUMODEL_FROM) }
void to_pb(const kvm_pit_channel_state& v, snap::PitChannel* p) { CPUMODEL_PIT_FIELDS(CPUMODEL_TO) }
void from_pb(const snap::PitChannel& p, kvm_pit_channel_state& v) { CPUMODEL_PIT_FIELDS(CPUMODEL_FROM) }

void to_pb(const kvm_sregs& v, snap::Sregs* p) {
#define CPUMODEL_SEG_TO(f) to_pb(v.f, p->mutable_##f());
  CPUMODEL_SREGS_SEGMENTS(CPUMODEL_SEG_TO)
#undef CPUMODEL_SEG_TO
  CPUMODEL_SREGS_FIELDS(CPUMODEL_TO)
  p->mutable_gdt()->set_base(v.gdt.base);
  p->mutable_gdt()->set_limit(v.gdt.limit);
  p->mutable_idt()->set_base(v.idt.base);
  p->mutable_idt()->set_limit(v.idt.limit);
  for (uint64_t w : v.interrupt_bitmap) p->add_interrupt_bitmap(w);
}

void from_pb(const snap::Sregs& p, kvm_sregs& v) {
#define CPUMODEL_SEG_FROM(f) from_pb(p.f(), v.f);
  CPUMODEL_SREGS_SEGMENTS(CPUMODEL_SEG_FROM)
#undef CPUMODEL_SEG_FROM
  CPUMODEL_SREGS_FIELDS(CPUMODEL_FROM)
  v.gdt.base = p.gdt().base();
  v.gdt.limit = static_cast<uint16_t>(p.gdt().limit());
  v.idt.base = p.idt().base();
  v.idt.limit = static_cast<uint16_t>(p.idt().limit());
  for (int i = 0; i < p.interrupt_bitmap_size() && i < static_cast<int>(std::size(v.interrupt_bitmap)); ++i)
    v.interrupt_bitmap[i] = p.interrupt_bitmap(i);
}

void to_pb(const kvm_vcpu_events& v, snap::Events* p) {
#define CPUMODEL_EV_TO(m, f) p->set_##f(v.m);
  CPUMODEL_EVENT_FIELDS(CPUMODEL_EV_TO)
#undef CPUMODEL_EV_TO
}

void from_pb(const snap::Events& p, kvm_vcpu_events& v) {
#define CPUMODEL_EV_FROM(m, f) v.m = static_cast<decltype(v.m)>(p.f());
  CPUMODEL_EVENT_FIELDS(CPUMODEL_EV_FROM)
#undef CPUMODEL_EV_FROM
}

void cpuid_to_pb(const CpuidTable& t, google::protobuf::RepeatedField<uint32_t>* out) {
  out->Reserve(static_cast<int>(t.size() * 6));
  for (const auto& [k, r] : t.entries())
    for (uint32_t w : {k.leaf, k.subleaf, r.eax, r.ebx, r.ecx, r.edx}) out->Add(w);
}

Result<CpuidTable> cpuid_from_pb(const google::protobuf::RepeatedField<uint32_t>& in, const std::string& where) {
  if (in.size() % 6) return input_error(where + ": CPUID list of " + std::to_string(in.size()) + " words is not whole entries");
  CpuidTable t;
  for (int i = 0; i < in.size(); i += 6) t.set(in[i], in[i + 1], CpuidRegs{in[i + 2], in[i + 3], in[i + 4], in[i + 5]});
  return t;
}

void vcpu_to_pb(const VcpuState& v, snap::Vcpu* p) {
  p->set_index(v.index);
  p->set_apic_id(v.apic_id);
  p->set_mp_state(v.mp_state);
  to_pb(v.regs, p->mutable_regs());
  to_pb(v.sregs, p->mutable_sregs());
  p->set_xsave_saved(!v.xsave.empty());
  p->set_xsave(v.xsave.data(), v.xsave.size());
  p->set_xsave2(v.xsave2);
  p->set_xcrs_saved(v.xcrs.has_value());
  if (v.xcrs)
    for (const auto& [x, val] : *v.xcrs) {
      auto* xcr = p->add_xcrs();
      xcr->set_xcr(x);
      xcr->set_value(val);
    }
  for (const auto& m : v.msrs) {
    p->add_msr_index(m.index);
    p->add_msr_value(m.value);
  }
  p->set_lapic(v.lapic.data(), v.lapic.size());
  if (v.events) to_pb(*v.events, p->mutable_events());
  if (v.debugregs) {
    auto* d = p->mutable_debugregs();
    for (uint64_t db : v.debugregs->db) d->add_db(db);
    d->set_dr6(v.debugregs->dr6);
    d->set_dr7(v.debugregs->dr7);
    d->set_flags(v.debugregs->flags);
  }
  cpuid_to_pb(v.cpuid, p->mutable_cpuid());
  p->set_tsc_khz(v.tsc_khz);
  for (const auto& u : v.unsupported) p->add_unsupported(u);
}

Result<VcpuState> vcpu_from_pb(const snap::Vcpu& p, const std::string& name) {
  std::string where = name + ": vCPU " + std::to_string(p.index());
  VcpuState v;
  v.index = p.index();
  v.apic_id = p.apic_id();
  v.mp_state = p.mp_state();
  from_pb(p.regs(), v.regs);
  from_pb(p.sregs(), v.sregs);
  if (p.xsave_saved()) {
    if (p.xsave().size() < kXsaveLegacySize || p.xsave().size() % 4 || p.xsave().size() > (1u << 20))
      return input_error(where + ": XSAVE area of " + std::to_string(p.xsave().size()) +
                         " bytes (KVM's is 4096 bytes or more, in 4-byte words)");
    v.xsave.assign(p.xsave().begin(), p.xsave().end());
  }
  v.xsave2 = p.xsave2();
  if (p.xcrs_saved()) {
    if (p.xcrs_size() > KVM_MAX_XCRS) return input_error(where + ": " + std::to_string(p.xcrs_size()) + " XCRs (KVM has at most 16)");
    v.xcrs.emplace();
    for (const auto& x : p.xcrs()) v.xcrs->push_back({x.xcr(), x.value()});
  }
  if (p.msr_index_size() != p.msr_value_size())
    return input_error(where + ": " + std::to_string(p.msr_index_size()) + " MSR indices but " +
                       std::to_string(p.msr_value_size()) + " values");
  for (int i = 0; i < p.msr_index_size(); ++i) v.msrs.push_back({p.msr_index(i), p.msr_value(i)});
  if (!p.lapic().empty() && p.lapic().size() != kLapicSize)
    return input_error(where + ": LAPIC page of " + std::to_string(p.lapic().size()) + " bytes (it is 1024)");
  v.lapic.assign(p.lapic().begin(), p.lapic().end());
  if (p.has_events()) from_pb(p.events(), v.events.emplace());
  if (p.has_debugregs()) {
    auto& d = v.debugregs.emplace();
    for (int i = 0; i < p.debugregs().db_size() && i < 4; ++i) d.db[i] = p.debugregs().db(i);
    d.dr6 = p.debugregs().dr6();
    d.dr7 = p.debugregs().dr7();
    d.flags = p.debugregs().flags();
  }
  auto cpuid = cpuid_from_pb(p.cpuid(), where);
  if (!cpuid) return cpuid.error();
  v.cpuid = std::move(*cpuid);
  v.tsc_khz = p.tsc_khz();
  v.unsupported.assign(p.unsupported().begin(), p.unsupported().end());
  return v;
}

void vm_to_pb(const VmState& v, snap::Vm* p) {
  p->set_irqchip(v.irqchip);
  if (v.irqchip) {
    to_pb(v.pic_master, p->mutable_pic_master());
    to_pb(v.pic_slave, p->mutable_pic_slave());
    auto* io = p->mutable_ioapic();
    io->set_base_address(v.ioapic.base_address);
    io->set_ioregsel(v.ioapic.ioregsel);
    io->set_id(v.ioapic.id);
    io->set_irr(v.ioapic.irr);
    for (const auto& r : v.ioapic.redirtbl) io->add_redirtbl(r.bits);
  }
  if (v.pit) {
    for (const auto& c : v.pit->channels) to_pb(c, p->mutable_pit()->add_channels());
    p->mutable_pit()->set_flags(v.pit->flags);
  }
  if (v.clock) {
    auto* c = p->mutable_clock();
    c->set_clock(v.clock->clock);
    c->set_flags(v.clock->flags);
    c->set_realtime(v.clock->realtime);
    c->set_host_tsc(v.clock->host_tsc);
  }
  for (const auto& u : v.unsupported) p->add_unsupported(u);
}

VmState vm_from_pb(const snap::Vm& p) {
  VmState v;
  v.irqchip = p.irqchip();
  if (v.irqchip) {
    from_pb(p.pic_master(), v.pic_master);
    from_pb(p.pic_slave(), v.pic_slave);
    v.ioapic.base_address = p.ioapic().base_address();
    v.ioapic.ioregsel = p.ioapic().ioregsel();
    v.ioapic.id = p.ioapic().id();
    v.ioapic.irr = p.ioapic().irr();
    for (int i = 0; i < p.ioapic().redirtbl_size() && i < KVM_IOAPIC_NUM_PINS; ++i)
      v.ioapic.redirtbl[i].bits = p.ioapic().redirtbl(i);
  }
  if (p.has_pit()) {
    auto& pit = v.pit.emplace();
    for (int i = 0; i < p.pit().channels_size() && i < 3; ++i) from_pb(p.pit().channels(i), pit.channels[i]);
    pit.flags = p.pit().flags();
  }
  if (p.has_clock()) {
    auto& c = v.clock.emplace();
    c.clock = p.clock().clock();
    c.flags = p.clock().flags();
    c.realtime = p.clock().realtime();
    c.host_tsc = p.clock().host_tsc();
  }
  v.unsupported.assign(p.unsupported().begin(), p.unsupported().end());
  return v;
}

void memory_to_pb(const MemoryRef& r, snap::MemoryRef* m) {
  m->set_file(r.file);
  m->set_size(r.size);
  m->set_guest_base(r.guest_base);
  m->set_checksum_algorithm(r.checksum_algorithm);
  m->set_checksum(r.checksum);
}

MemoryRef memory_from_pb(const snap::MemoryRef& m) {
  return MemoryRef{m.file(), m.size(), m.guest_base(), m.checksum_algorithm(), m.checksum()};
}

void devices_to_pb(const DeviceState& d, snap::Devices* p) {
  auto* s = p->mutable_serial();
  s->set_ier(d.serial.ier);
  s->set_lcr(d.serial.lcr);
  s->set_mcr(d.serial.mcr);
  s->set_scr(d.serial.scr);
  s->set_dll(d.serial.dll);
  s->set_dlm(d.serial.dlm);
  s->set_fcr(d.serial.fcr);
  s->set_thr_interrupt(d.serial.thr_interrupt);
  s->set_irq_level(d.serial.irq_level);
  s->set_rx(d.serial.rx.data(), d.serial.rx.size());
  auto* k = p->mutable_i8042();
  k->set_out(d.i8042.out.data(), d.i8042.out.size());
  k->set_pending_command(d.i8042.pending_command);
  k->set_command_byte(d.i8042.command_byte);
  p->mutable_cmos()->set_index(d.cmos.index);
  p->mutable_cmos()->set_ram(d.cmos.ram.data(), d.cmos.ram.size());
  auto* pm = p->mutable_pm();
  pm->set_status(d.pm.status);
  pm->set_enable(d.pm.enable);
  pm->set_control(d.pm.control);
  pm->set_sci_level(d.pm.sci_level);
}

// The registers are 8 or 16 bits wide; a larger value is a corrupted or foreign file.
Result<DeviceState> devices_from_pb(const snap::Devices& p, const std::string& name) {
  DeviceState d;
  auto byte = [&](uint32_t v, const char* what, uint8_t& out) -> Status {
    if (v > 0xff) return input_error(name + ": device state: " + what + " is " + std::to_string(v) + ", not a byte");
    out = static_cast<uint8_t>(v);
    return ok_status();
  };
  const auto& s = p.serial();
  for (auto [v, what, out] : {std::tuple{s.ier(), "serial IER", &d.serial.ier}, {s.lcr(), "serial LCR", &d.serial.lcr},
                              {s.mcr(), "serial MCR", &d.serial.mcr}, {s.scr(), "serial SCR", &d.serial.scr},
                              {s.dll(), "serial DLL", &d.serial.dll}, {s.dlm(), "serial DLM", &d.serial.dlm},
                              {s.fcr(), "serial FCR", &d.serial.fcr},
                              {p.i8042().pending_command(), "i8042 pending command", &d.i8042.pending_command},
                              {p.i8042().command_byte(), "i8042 command byte", &d.i8042.command_byte},
                              {p.cmos().index(), "CMOS index", &d.cmos.index}})
    if (auto st = byte(v, what, *out); !st) return st.error();
  d.serial.thr_interrupt = s.thr_interrupt();
  d.serial.irq_level = s.irq_level();
  d.serial.rx.assign(s.rx().begin(), s.rx().end());
  d.i8042.out.assign(p.i8042().out().begin(), p.i8042().out().end());
  if (p.cmos().ram().size() != d.cmos.ram.size())
    return input_error(name + ": device state: CMOS RAM has " + std::to_string(p.cmos().ram().size()) +
                       " bytes, not 128");
  std::copy(p.cmos().ram().begin(), p.cmos().ram().end(), d.cmos.ram.begin());
  const auto& pm = p.pm();
  if (pm.status() > 0xffff || pm.enable() > 0xffff || pm.control() > 0xffff)
    return input_error(name + ": device state: an ACPI PM register is wider than 16 bits");
  d.pm.status = static_cast<uint16_t>(pm.status());
  d.pm.enable = static_cast<uint16_t>(pm.enable());
  d.pm.control = static_cast<uint16_t>(pm.control());
  d.pm.sci_level = pm.sci_level();
  return d;
}

void header_to_pb(const SnapshotHeader& h, snap::Header* p) {
  p->set_tool_version(h.tool_version);
  p->set_cpu_spec(h.cpu_spec);
  p->set_cpu_model(h.cpu_model);
  auto* t = p->mutable_topology();
  t->set_smp(h.smp);
  t->set_cpus(h.cpus);
  t->set_maxcpus(h.maxcpus);
  t->set_sockets(h.sockets);
  t->set_dies(h.dies);
  t->set_cores(h.cores);
  t->set_threads(h.threads);
  auto* s = p->mutable_source();
  s->set_vendor(h.source.vendor);
  s->set_signature(h.source.signature);
  s->set_brand(h.source.brand);
  s->set_microcode(h.source.microcode);
  s->set_kernel(h.source.kernel);
  s->set_kvm_backend(h.source.kvm_backend);
  s->set_hostname(h.source.hostname);
  s->set_tsc_khz(h.source.tsc_khz);
  s->set_tsc_scaling(h.source.tsc_scaling);
  for (uint32_t m : h.source.msr_index_list) s->add_msr_index_list(m);
  p->set_created_unix_s(h.created_unix_s);
  memory_to_pb(h.memory, p->mutable_memory());
  for (const auto& r : h.more_memory) memory_to_pb(r, p->add_more_memory());
  p->set_cpu_mode(h.cpu_mode);
  p->set_guest(h.guest);
  for (const auto& u : h.unsupported) p->add_unsupported(u);
}

SnapshotHeader header_from_pb(const snap::Header& p) {
  SnapshotHeader h;
  h.tool_version = p.tool_version();
  h.cpu_spec = p.cpu_spec();
  h.cpu_model = p.cpu_model();
  const auto& t = p.topology();
  h.smp = t.smp();
  h.cpus = t.cpus();
  h.maxcpus = t.maxcpus();
  h.sockets = t.sockets();
  h.dies = t.dies();
  h.cores = t.cores();
  h.threads = t.threads();
  const auto& s = p.source();
  h.source.vendor = s.vendor();
  h.source.signature = s.signature();
  h.source.brand = s.brand();
  h.source.microcode = s.microcode();
  h.source.kernel = s.kernel();
  h.source.kvm_backend = s.kvm_backend();
  h.source.hostname = s.hostname();
  h.source.tsc_khz = s.tsc_khz();
  h.source.tsc_scaling = s.tsc_scaling();
  h.source.msr_index_list.assign(s.msr_index_list().begin(), s.msr_index_list().end());
  h.created_unix_s = p.created_unix_s();
  h.memory = memory_from_pb(p.memory());
  for (const auto& m : p.more_memory()) h.more_memory.push_back(memory_from_pb(m));
  h.cpu_mode = p.cpu_mode();
  h.guest = p.guest();
  h.unsupported.assign(p.unsupported().begin(), p.unsupported().end());
  return h;
}

}  // namespace

std::string snapshot_payload(const Snapshot& s) {
  snap::Snapshot p;
  header_to_pb(s.header, p.mutable_header());
  vm_to_pb(s.state.vm, p.mutable_vm());
  for (const auto& v : s.state.vcpus) vcpu_to_pb(v, p.add_vcpus());
  if (s.state.devices) devices_to_pb(*s.state.devices, p.mutable_devices());
  std::string out;
  p.SerializeToString(&out);
  return out;
}

Result<Snapshot> parse_snapshot_payload(std::string_view bytes, const std::string& name) {
  snap::Snapshot p;
  // Protobuf logs its own complaints (invalid UTF-8...) to stderr; ours is the one-line error.
  google::protobuf::LogSilencer silence;
  try {
    google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()), static_cast<int>(bytes.size()));
    if (!p.ParseFromCodedStream(&in) || !in.ConsumedEntireMessage())
      return input_error(name + ": the state does not parse (not a cpumodel.snap.Snapshot message)");
  } catch (const std::exception& e) {
    return input_error(name + ": the state does not parse: " + e.what());
  }
  Snapshot s;
  s.header = header_from_pb(p.header());
  // Memory regions: each more one non-empty, above the ones before it (no overlap).
  uint64_t end = s.header.memory.guest_base + s.header.memory.size;
  if (end < s.header.memory.guest_base)
    return input_error(name + ": the memory region wraps around the address space");
  for (const auto& m : s.header.more_memory) {
    if (m.size == 0 || m.guest_base < end || m.guest_base + m.size < m.guest_base)
      return input_error(name + ": memory region " + m.file + " (" + std::to_string(m.size) + " bytes at " +
                         std::to_string(m.guest_base) + ") is empty or overlaps the one before it");
    end = m.guest_base + m.size;
  }
  s.state.vm = vm_from_pb(p.vm());
  if (p.vcpus_size() == 0) return input_error(name + ": the snapshot has no vCPU");
  for (const auto& v : p.vcpus()) {
    auto vcpu = vcpu_from_pb(v, name);
    if (!vcpu) return vcpu.error();
    s.state.vcpus.push_back(std::move(*vcpu));
  }
  if (p.has_devices()) {
    auto d = devices_from_pb(p.devices(), name);
    if (!d) return d.error();
    s.state.devices = std::move(*d);
  }
  return s;
}

}  // namespace cpumodel::internal
