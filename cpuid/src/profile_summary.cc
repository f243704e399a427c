// `cpumodel host` output: the aligned summary a person reads, and the profile as JSON.
#include <cstdio>

#include "cpumodel/cpuid/decode.h"
#include "cpumodel/cpuid/host_probe.h"

namespace cpumodel {
namespace {

std::string fact(const HostProfile& p, const std::string& key, const std::string& fallback = "unknown") {
  auto it = p.facts.find(key);
  return it == p.facts.end() || it->second.empty() ? fallback : it->second;
}

std::string plural(unsigned n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

void json_table(JsonWriter& w, const CpuidTable& t) {
  w.begin_array();
  for (const auto& [k, r] : t.entries()) {
    w.begin_object();
    w.field("leaf", static_cast<uint64_t>(k.leaf));
    w.field("subleaf", static_cast<uint64_t>(k.subleaf));
    w.field("eax", static_cast<uint64_t>(r.eax));
    w.field("ebx", static_cast<uint64_t>(r.ebx));
    w.field("ecx", static_cast<uint64_t>(r.ecx));
    w.field("edx", static_cast<uint64_t>(r.edx));
    w.end_object();
  }
  w.end_array();
}

void json_msrs(JsonWriter& w, const MsrMap& m) {
  w.begin_array();
  for (const auto& [index, value] : m) {
    w.begin_object();
    w.field("index", static_cast<uint64_t>(index));
    w.field("value", value);
    w.end_object();
  }
  w.end_array();
}

}  // namespace

std::string host_summary(const HostProfile& p) {
  DecodedCpu d = decode_cpu(p.cpuid, p.msrs);
  std::string out;
  auto row = [&](const char* k, const std::string& v) {
    std::string line = k;
    line.resize(14, ' ');
    out += line + v + "\n";
  };
  char sig[96];
  std::snprintf(sig, sizeof sig, "0x%08x  family %u (0x%x), model %u (0x%x), stepping %u", d.signature.raw,
                d.signature.family, d.signature.family, d.signature.model, d.signature.model, d.signature.stepping);
  row("host", p.name);
  row("vendor", d.vendor);
  row("brand", d.brand.empty() ? "(none)" : d.brand);
  row("signature", sig);
  row("uarch", fact(p, "microarchitecture"));
  row("hypervisor", d.hypervisor.signature.empty() ? (d.hypervisor.flag ? "flag set" : "none (bare metal)")
                                                   : "'" + d.hypervisor.signature + "' (running in a VM)");
  row("virt flags", fact(p, "virt_flags") + " (/proc/cpuinfo)");
  std::string kvm = "/dev/kvm " + fact(p, "kvm_device");
  if (p.facts.count("kvm_api_version")) kvm += ", API " + fact(p, "kvm_api_version");
  row("kvm", kvm);
  row("backend", fact(p, "kvm_backend", "none") + " (nested virtualization: " + fact(p, "kvm_nested") + ")");
  const HostTopology& t = p.topology;
  if (t.known())
    row("topology", plural(t.packages, "package") + " x " + plural(t.dies, "die") + " x " + plural(t.cores, "core") +
                        " x " + plural(t.threads, "thread") + ", " + plural(t.online_cpus, "online CPU") + ", " +
                        plural(t.numa_nodes, "NUMA node"));
  else
    row("topology", "unknown");
  row("kernel", fact(p, "kernel"));
  row("microcode", fact(p, "microcode"));
  if (p.tsc_khz) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.0f kHz", *p.tsc_khz);
    row("tsc", buf + (p.facts.count("tsc_khz_source") ? " (" + fact(p, "tsc_khz_source") + ")" : std::string()));
  } else {
    row("tsc", "unknown");
  }
  row("cpuid", std::to_string(p.cpuid.size()) + " leaves/subleaves, " + std::to_string(d.features.count()) +
                   " named features, " + std::to_string(d.unknown_bits.size()) + " unnamed set bits");
  if (!p.msrs.empty()) row("msrs", std::to_string(p.msrs.size()) + " feature MSRs read");
  if (p.kvm_cpuid)
    row("kvm cpuid", std::to_string(p.kvm_cpuid->size()) + " entries, " +
                         std::to_string(features_of(*p.kvm_cpuid, p.kvm_msrs ? *p.kvm_msrs : MsrMap{}).count()) +
                         " features a guest can be given");
  else
    row("kvm cpuid", "unknown (" + fact(p, "kvm_supported_cpuid", "no usable /dev/kvm") + ")");
  if (p.kvm_msrs) row("kvm msrs", std::to_string(p.kvm_msrs->size()) + " feature MSRs");
  return out;
}

void profile_to_json(const HostProfile& p, JsonWriter& w) {
  DecodedCpu d = decode_cpu(p.cpuid, p.msrs);
  w.begin_object();
  w.field("name", p.name);
  w.field("format", p.format);
  w.field("vendor", d.vendor);
  w.field("family", d.signature.family);
  w.field("model_number", d.signature.model);
  w.field("stepping", d.signature.stepping);
  w.field("brand", d.brand);
  w.key("facts").begin_object();
  for (const auto& [k, v] : p.facts) w.field(k, v);
  w.end_object();
  w.key("topology").begin_object();
  w.field("packages", p.topology.packages);
  w.field("dies", p.topology.dies);
  w.field("cores", p.topology.cores);
  w.field("threads", p.topology.threads);
  w.field("numa_nodes", p.topology.numa_nodes);
  w.field("online_cpus", p.topology.online_cpus);
  w.end_object();
  w.key("tsc_khz");
  if (p.tsc_khz) w.value(*p.tsc_khz);
  else w.null();
  w.key("features").strings(d.features.names());
  w.key("cpuid");
  json_table(w, p.cpuid);
  w.key("msrs");
  json_msrs(w, p.msrs);
  w.key("kvm_features");
  if (p.kvm_cpuid) w.strings(p.guest_features().names());
  else w.null();
  w.key("kvm_cpuid");
  if (p.kvm_cpuid) json_table(w, *p.kvm_cpuid);
  else w.null();
  w.key("kvm_msrs");
  if (p.kvm_msrs) json_msrs(w, *p.kvm_msrs);
  else w.null();
  w.end_object();
}

}  // namespace cpumodel
