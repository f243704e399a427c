// `cpumodel state inspect SNAPSHOT [--json]`: what a snapshot holds, per vCPU.
#include <algorithm>
#include <cstdio>
#include <ctime>

#include "cpumodel/cpuid/features.h"
#include "cpumodel/cpuid/json.h"
#include "cpumodel/migrate/snapshot.h"

namespace cpumodel {
namespace {

std::string hex64(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

const char* mp_state_name(uint32_t s) {
  static const char* const kNames[] = {"runnable",  "uninitialized", "init-received", "halted",
                                       "sipi-received", "stopped", "check-stop", "operating",
                                       "load", "ap-reset-hold", "suspended"};
  return s < std::size(kNames) ? kNames[s] : "unknown";
}

struct Signature {
  unsigned family = 0, model = 0, stepping = 0;
};

Signature signature_of(uint32_t eax) {
  unsigned base_family = (eax >> 8) & 0xf, base_model = (eax >> 4) & 0xf;
  Signature s;
  s.family = base_family == 0xf ? base_family + ((eax >> 20) & 0xff) : base_family;
  s.model = (base_family == 6 || base_family == 0xf) ? base_model | (((eax >> 16) & 0xf) << 4) : base_model;
  s.stepping = eax & 0xf;
  return s;
}

std::string cpuid_summary(const CpuidTable& t) {
  if (t.empty()) return "none set";
  Signature s = signature_of(t.get(1).eax);
  return t.vendor() + " " + std::to_string(s.family) + "/" + std::to_string(s.model) + "/" +
         std::to_string(s.stepping) + ", " + std::to_string(t.size()) + " entries, " +
         std::to_string(features_of(t).count()) + " features";
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

std::string date_of(uint64_t unix_s) {
  std::time_t t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string pad(std::string s, size_t w) {
  if (s.size() < w) s.resize(w, ' ');
  return s;
}

}  // namespace

std::string vcpu_mode(const VcpuState& v) {
  const kvm_sregs& s = v.sregs;
  if (!(s.cr0 & 1)) return "real mode";
  bool paging = s.cr0 >> 31 & 1;
  if (s.efer >> 10 & 1) return s.cs.l ? "64-bit long mode" : "compatibility mode";
  std::string m = s.cs.db ? "32-bit protected mode" : "16-bit protected mode";
  return paging ? m + ", paging" : m;
}

std::string snapshot_text(const Snapshot& s) {
  const SnapshotHeader& h = s.header;
  std::string out = "format " + std::to_string(h.major) + "." + std::to_string(h.minor) + ", written by cpumodel " +
                    h.tool_version + " at " + date_of(h.created_unix_s) + "\n";
  out += "  cpu      " + h.cpu_model + (h.cpu_spec.empty() ? "" : " (spec \"" + h.cpu_spec + "\")") + ", -smp " +
         h.smp + "\n";
  Signature sig = signature_of(h.source.signature);
  out += "  source   " + h.source.vendor + " family " + std::to_string(sig.family) + " model " +
         std::to_string(sig.model) + " stepping " + std::to_string(sig.stepping) + " (" + h.source.brand + ")\n";
  out += "           microcode " + h.source.microcode + ", " + h.source.kernel + ", " + h.source.kvm_backend +
         ", hostname " + h.source.hostname + ", TSC " + std::to_string(h.source.tsc_khz) + " kHz" +
         (h.source.tsc_scaling ? " (scaling available)" : "") + "\n";
  bool first = true;
  for (const MemoryRef* m : memory_regions(h)) {
    char sum[24];
    std::snprintf(sum, sizeof sum, "%016llx", static_cast<unsigned long long>(m->checksum));
    out += std::string(first ? "  memory   " : "           ") + m->file + ", " + std::to_string(m->size) +
           " bytes at guest-physical " + hex64(m->guest_base) + ", " + m->checksum_algorithm + " " + sum + "\n";
    first = false;
  }
  const VmState& vm = s.state.vm;
  std::vector<std::string> devices;
  if (vm.irqchip) devices.push_back("irqchip (PIC master/slave, IOAPIC)");
  if (vm.pit) devices.push_back("PIT");
  if (vm.clock) devices.push_back("kvmclock at " + std::to_string(vm.clock->clock) + " ns");
  out += "  vm       " + (devices.empty() ? std::string("no device state") : join(devices, ", ")) + "\n";
  if (const auto& d = s.state.devices)
    out += "  devices  UART 8250 (" + std::to_string(d->serial.rx.size()) + " input bytes queued), i8042, CMOS RTC, " +
           "ACPI PM (SCI " + (d->pm.sci_level ? "raised" : "low") + ")\n";
  std::vector<std::string> unsupported = h.unsupported;
  unsupported.insert(unsupported.end(), vm.unsupported.begin(), vm.unsupported.end());
  for (const auto& v : s.state.vcpus)
    for (const auto& u : v.unsupported)
      if (std::find(unsupported.begin(), unsupported.end(), u) == unsupported.end()) unsupported.push_back(u);
  for (const auto& u : unsupported) out += "  not saved: " + u + "\n";
  out += "\n  vCPU  APIC  mode                   state          RIP                 XCR0 components       MSRs  CPUID\n";
  for (const auto& v : s.state.vcpus) {
    char rip[24];
    std::snprintf(rip, sizeof rip, "0x%016llx", static_cast<unsigned long long>(v.regs.rip));
    out += "  " + pad(std::to_string(v.index), 6) + pad(std::to_string(v.apic_id), 6) + pad(vcpu_mode(v), 23) +
           pad(mp_state_name(v.mp_state), 15) + pad(rip, 20) + pad(join(xsave_components(v.xcr0()), " "), 22) +
           pad(std::to_string(v.msrs.size()), 6) + cpuid_summary(v.cpuid) + "\n";
  }
  return out;
}

std::string snapshot_json(const Snapshot& s) {
  const SnapshotHeader& h = s.header;
  JsonWriter j;
  j.begin_object();
  j.field("format_version", std::to_string(h.major) + "." + std::to_string(h.minor));
  j.field("tool_version", h.tool_version);
  j.field("created_unix_s", h.created_unix_s);
  j.field("cpu_spec", h.cpu_spec).field("model", h.cpu_model).field("smp", h.smp);
  j.key("source").begin_object();
  Signature sig = signature_of(h.source.signature);
  j.field("vendor", h.source.vendor).field("signature", h.source.signature);
  j.field("family", sig.family).field("model_number", sig.model).field("stepping", sig.stepping);
  j.field("brand", h.source.brand).field("microcode", h.source.microcode).field("kernel", h.source.kernel);
  j.field("kvm_backend", h.source.kvm_backend).field("hostname", h.source.hostname);
  j.field("tsc_khz", h.source.tsc_khz).field("tsc_scaling", h.source.tsc_scaling);
  j.end_object();
  auto memory_json = [&j](const MemoryRef& m) {
    j.begin_object();
    j.field("file", m.file).field("size", m.size).field("guest_base", m.guest_base);
    j.field("checksum_algorithm", m.checksum_algorithm).field("checksum", m.checksum);
    j.end_object();
  };
  j.key("memory");
  memory_json(h.memory);
  j.key("more_memory").begin_array();
  for (const auto& m : h.more_memory) memory_json(m);
  j.end_array();
  const VmState& vm = s.state.vm;
  j.key("vm").begin_object();
  j.field("irqchip", vm.irqchip).field("pit", vm.pit.has_value()).field("kvmclock", vm.clock.has_value());
  j.key("unsupported").strings(vm.unsupported);
  j.end_object();
  j.key("unsupported").strings(h.unsupported);
  if (const auto& d = s.state.devices) {
    j.key("devices").begin_object();
    j.field("serial_input_queued", static_cast<uint64_t>(d->serial.rx.size()));
    auto u = [](auto v) { return static_cast<unsigned>(v); };
    j.field("serial_ier", u(d->serial.ier)).field("serial_lcr", u(d->serial.lcr)).field("serial_mcr", u(d->serial.mcr));
    j.field("i8042_command_byte", u(d->i8042.command_byte)).field("cmos_index", u(d->cmos.index));
    j.field("acpi_pm1_status", u(d->pm.status)).field("acpi_pm1_enable", u(d->pm.enable));
    j.field("acpi_pm1_control", u(d->pm.control)).field("sci", d->pm.sci_level);
    j.end_object();
  } else {
    j.key("devices").null();
  }
  j.key("vcpus").begin_array();
  for (const auto& v : s.state.vcpus) {
    j.begin_object();
    j.field("index", v.index).field("apic_id", v.apic_id).field("mode", vcpu_mode(v));
    j.field("mp_state", mp_state_name(v.mp_state)).field("rip", static_cast<uint64_t>(v.regs.rip));
    j.field("xcr0", v.xcr0());
    j.key("xcr0_components").strings(xsave_components(v.xcr0()));
    j.field("xsave_bytes", static_cast<uint64_t>(v.xsave.size())).field("lapic", !v.lapic.empty());
    j.field("msr_count", static_cast<uint64_t>(v.msrs.size()));
    j.key("cpuid").begin_object();
    Signature cs = signature_of(v.cpuid.get(1).eax);
    j.field("vendor", v.cpuid.vendor()).field("family", cs.family).field("model_number", cs.model);
    j.field("stepping", cs.stepping).field("entries", static_cast<uint64_t>(v.cpuid.size()));
    j.key("features").strings(features_of(v.cpuid).names());
    j.end_object();
    j.field("tsc_khz", v.tsc_khz);
    j.key("unsupported").strings(v.unsupported);
    j.end_object();
  }
  j.end_array();
  j.end_object();
  return j.str() + "\n";
}

}  // namespace cpumodel
