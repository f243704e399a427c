// migrate-check --state: a saved guest against a destination host profile (state_check.h).
#include "cpumodel/migrate/state_check.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "cpumodel/cpuid/decode.h"
#include "cpumodel/cpuid/features.h"
#include "cpumodel/cpuid/json.h"
#include "baseline_internal.h"
#include "cpumodel/migrate/baseline.h"

namespace cpumodel {
namespace {

constexpr uint32_t kMsrXss = 0xda0;
// Feature MSRs whose bits are named features (arch-capabilities, core-capability, perf-capabilities).
constexpr uint32_t kFeatureMsrs[] = {0x10a, 0xcf, 0x345};

std::string num(uint64_t v) { return std::to_string(v); }

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// "vCPU 0", "vCPUs 0-3", "vCPUs 0, 2".
std::string vcpu_list(const std::vector<unsigned>& idx) {
  if (idx.size() == 1) return "vCPU " + num(idx[0]);
  bool run = true;
  for (size_t i = 1; i < idx.size(); ++i) run = run && idx[i] == idx[i - 1] + 1;
  if (run) return "vCPUs " + num(idx.front()) + "-" + num(idx.back());
  std::string s = "vCPUs ";
  for (size_t i = 0; i < idx.size(); ++i) s += (i ? ", " : "") + num(idx[i]);
  return s;
}

FeatureSet guest_features(const VcpuState& v) {
  MsrMap msrs;
  for (uint32_t m : kFeatureMsrs)
    if (auto val = v.msr(m)) msrs[m] = *val;
  return features_of(v.cpuid, msrs);
}

// What the destination's KVM can give. Without KVM data in the profile, summarize_host() adds what
// KVM synthesises; the KVM paravirtual leaf (40000001H) is KVM's own on every host, so all of it.
FeatureSet destination_features(const HostProfile& to, const HostSummary& dst) {
  FeatureSet f = dst.features;
  // kvm_pvm does not enforce CPUID leaves 1, 7 and 0DH: guests see (and KVM_GET_CPUID2 returns)
  // the host's bits there whatever was set (measured, ../shared/ENVIRONMENT.md). A guest saved on
  // such a host carries them, and such a destination gives them: its raw CPUID counts.
  if (auto b = to.facts.find("kvm_backend"); b != to.facts.end() && b->second == "kvm_pvm")
    f |= features_of(to.cpuid, to.msrs);
  // Bits the VMM sets whatever KVM_GET_SUPPORTED_CPUID lists, which every KVM runs a guest with:
  // hypervisor and tsc-deadline (QEMU's kvm_arch_get_supported_cpuid adds both; the deadline timer
  // is the in-kernel LAPIC's), and the -smp topology bits ht and cmp-legacy. Without them a
  // snapshot was refused by the profile of the very host it was saved on (nested-SVM rig).
  f |= kvm_synthesised_features();
  for (const char* n : {"ht", "cmp-legacy"})
    if (auto id = find_feature(n)) f.add(*id);
  if (!to.kvm_cpuid)
    for (FeatureId id = 0; id < feature_count(); ++id) {
      FeatureWord w = feature(id).word;
      if (w == FeatureWord::k40000001Eax || w == FeatureWord::k40000001Edx) f.add(id);
    }
  return f;
}

bool has_any(const FeatureSet& have, const char* needs) {
  if (!*needs) return true;
  std::istringstream in(needs);
  for (std::string name; in >> name;)
    if (have.has(name)) return true;
  return false;
}

void cpuid_reasons(const Snapshot& s, const HostProfile& to, const FeatureSet& dst_features, const HostSummary& dst,
                   StateCheck& c) {
  // Group vCPUs by what they lack, so a 64-vCPU guest gives one line per missing feature.
  std::vector<std::pair<FeatureId, std::vector<unsigned>>> lacking;
  unsigned phys_bits = 0;
  for (const auto& v : s.state.vcpus) {
    for (FeatureId id : (guest_features(v) - dst_features).ids()) {
      auto it = std::find_if(lacking.begin(), lacking.end(), [&](const auto& p) { return p.first == id; });
      if (it == lacking.end()) lacking.push_back({id, {v.index}});
      else it->second.push_back(v.index);
    }
    if (v.cpuid.max_extended() >= 0x80000008) phys_bits = std::max(phys_bits, v.cpuid.get(0x80000008).eax & 0xff);
  }
  for (const auto& [id, vcpus] : lacking) {
    std::string who = vcpu_list(vcpus);
    c.reasons.push_back("CPUID: " + to.name + " lacks " + describe_feature(id) + " (in the CPUID of " + who + ")");
    auto g = std::find_if(c.missing.begin(), c.missing.end(), [&](const auto& p) { return p.first == who; });
    if (g == c.missing.end()) g = c.missing.insert(c.missing.end(), {who, FeatureSet()});
    g->second.add(id);
  }
  if (phys_bits > dst.phys_bits)
    c.reasons.push_back("phys-bits: the guest has " + num(phys_bits) + " (CPUID.80000008H:EAX[7:0]), " + to.name +
                        " has " + num(dst.phys_bits));
}

void xsave_reasons(const Snapshot& s, const HostProfile& to, const HostSummary& dst, StateCheck& c) {
  uint64_t xcr0 = 0, xss = 0;
  const VcpuState* layout = &s.state.vcpus[0];
  for (const auto& v : s.state.vcpus) {
    xcr0 |= v.xcr0();
    xss |= v.msr(kMsrXss).value_or(0);
  }
  // x87 and SSE state restore on any x86-64 host (without XSAVE, KVM takes the legacy region).
  uint64_t dst_xcr0 = dst.xcr0 | 3;
  for (unsigned b = 0; b < 64; ++b) {
    if ((xcr0 >> b & 1) && !(dst_xcr0 >> b & 1))
      c.reasons.push_back("XSAVE: " + to.name + " lacks state component " + num(b) + " (" + xsave_component(b) +
                          "), in use by the guest (XCR0 " + hex(xcr0) + ")");
    if ((xss >> b & 1) && !(dst.xss >> b & 1))
      c.reasons.push_back("XSAVE: " + to.name + " lacks supervisor state component " + num(b) + " (" +
                          xsave_component(b) + "), in use by the guest (IA32_XSS " + hex(xss) + ")");
  }
  // The saved area has the source's standard-format layout (the guest CPUID's 0DH copies it).
  uint32_t need = 576;  // legacy area + XSAVE header
  const CpuidTable& dst_cpuid = to.guest_cpuid();
  for (unsigned b = 2; b < 64; ++b) {
    if (!(xcr0 >> b & 1) || !(dst_xcr0 >> b & 1)) continue;
    CpuidRegs g = layout->cpuid.get(0xd, b), d = dst_cpuid.get(0xd, b);
    need = std::max(need, g.eax + g.ebx);
    if (g.eax && (g.eax != d.eax || g.ebx != d.ebx))
      c.reasons.push_back("XSAVE: component " + num(b) + " (" + xsave_component(b) + ") is " + num(g.eax) +
                          " bytes at offset " + num(g.ebx) + " in the saved area, " + num(d.eax) + " at " +
                          num(d.ebx) + " on " + to.name);
  }
  if (dst.xsave_size && dst.xsave_size < need)
    c.reasons.push_back("XSAVE: the guest's components need a " + num(need) + "-byte area, " + to.name +
                        " holds at most " + num(dst.xsave_size) + " (CPUID.0DH.0:ECX)");
}

std::vector<uint32_t> listed_msrs(const HostProfile& to) {
  std::vector<uint32_t> out;
  auto it = to.facts.find("kvm_msr_index_list");
  if (it == to.facts.end()) return out;
  std::istringstream in(it->second);
  for (std::string tok; in >> tok;) out.push_back(static_cast<uint32_t>(std::strtoul(tok.c_str(), nullptr, 16)));
  return out;
}

void msr_reasons(const Snapshot& s, const HostProfile& to, const FeatureSet& dst_features, StateCheck& c) {
  std::vector<uint32_t> listed = listed_msrs(to);
  std::vector<uint32_t> seen;
  for (const auto& v : s.state.vcpus)
    for (const auto& m : v.msrs) {
      if (std::find(seen.begin(), seen.end(), m.index) != seen.end()) continue;
      seen.push_back(m.index);
      const StateMsr* row = find_state_msr(m.index);
      if (!row) {
        c.notes.push_back(describe_msr(m.index) + " is not one this cpumodel knows; not judged");
        continue;
      }
      if (!has_any(dst_features, row->needs))
        c.reasons.push_back("MSR: " + describe_msr(m.index) + " cannot be restored on " + to.name + ": it needs " +
                            std::string(row->needs) + ", which " + to.name + "'s KVM does not give");
      else if (row->listed && !listed.empty() && std::find(listed.begin(), listed.end(), m.index) == listed.end())
        c.reasons.push_back("MSR: " + describe_msr(m.index) + " is not in " + to.name + "'s KVM_GET_MSR_INDEX_LIST");
    }
  if (listed.empty())
    c.notes.push_back(to.name + " has no KVM MSR index list in its profile: MSRs were judged by the CPUID features "
                      "that make KVM accept them");
}

void tsc_reasons(const Snapshot& s, const HostProfile& to, StateCheck& c) {
  uint32_t guest = s.state.vcpus[0].tsc_khz ? s.state.vcpus[0].tsc_khz : s.header.source.tsc_khz;
  if (!guest) {
    c.notes.push_back("the snapshot has no TSC frequency (KVM_GET_TSC_KHZ failed on the source); not judged");
    return;
  }
  auto [khz, from] = destination_tsc_khz(to);
  // AMD says so in CPUID (8000000AH:EDX[4], TscRateMsr); Intel's VMX TSC scaling is a VMX control no
  // CPUID dump shows, so only a profile fact ("tsc_scaling: yes", from KVM_CAP_TSC_CONTROL) says it.
  auto fact = to.facts.find("tsc_scaling");
  bool scaling = features_of(to.cpuid).has("tsc-scale") || (fact != to.facts.end() && fact->second == "yes");
  if (khz > 0) {
    double ppm = std::fabs(khz - guest) / guest * 1e6;
    if (ppm <= kTscTolerancePpm) return;
    if (scaling) {
      c.notes.push_back("TSC: " + to.name + " runs at " + num(std::llround(khz)) + " kHz (" + from + "), the guest at " +
                        num(guest) + " kHz: KVM_SET_TSC_KHZ will scale it");
      return;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f ppm", ppm);
    c.reasons.push_back("TSC: " + to.name + " runs its TSC at " + num(std::llround(khz)) + " kHz (" + from +
                        "), the guest's runs at " + num(guest) + " kHz: " + buf +
                        " apart (more than 250) and no TSC scaling there");
    return;
  }
  if (!scaling)
    c.reasons.push_back("TSC: " + to.name + "'s TSC frequency is unknown (no tsc_khz in the profile, no CPUID.15H/16H, "
                        "no frequency in the brand string) and it has no known TSC scaling: the guest's " +
                        num(guest) + " kHz TSC cannot be promised");
}

}  // namespace

std::pair<double, std::string> destination_tsc_khz(const HostProfile& to) {
  if (to.tsc_khz && *to.tsc_khz > 0) return {*to.tsc_khz, "profile"};
  const CpuidTable& raw = to.cpuid;
  if (raw.max_basic() >= 0x15) {
    CpuidRegs r = raw.get(0x15);
    if (r.eax && r.ebx && r.ecx) return {static_cast<double>(r.ecx) * r.ebx / r.eax / 1000.0, "CPUID.15H"};
  }
  if (raw.max_basic() >= 0x16 && (raw.get(0x16).eax & 0xffff)) return {(raw.get(0x16).eax & 0xffff) * 1000.0, "CPUID.16H"};
  // "Intel(R) Xeon(R) CPU E5-2650 v3 @ 2.30GHz": Intel's brand strings end with the nominal
  // frequency, which is the TSC's on every Intel CPU with an invariant TSC.
  std::string brand = brand_string(raw);
  size_t at = brand.rfind("@ ");
  if (at != std::string::npos) {
    double value = std::strtod(brand.c_str() + at + 2, nullptr);
    if (brand.find("GHz", at) != std::string::npos && value > 0) return {value * 1e6, "brand string"};
    if (brand.find("MHz", at) != std::string::npos && value > 0) return {value * 1e3, "brand string"};
  }
  return {0, ""};
}

StateCheck check_state(const Snapshot& s, const std::string& snapshot_name, const HostProfile& to) {
  StateCheck c;
  c.snapshot = snapshot_name;
  c.source = s.header.source.hostname + " (" + s.header.source.kvm_backend + ")";
  c.destination = to.name;
  if (s.state.vcpus.empty()) {
    c.ok = false;
    c.reasons.push_back("the snapshot has no vCPU");
    return c;
  }
  std::string dst_vendor = to.cpuid.vendor();
  if (dst_vendor != s.header.source.vendor)
    c.reasons.push_back("vendor: the guest was saved on a " + s.header.source.vendor + " host, " + to.name + " is " +
                        dst_vendor);
  HostSummary dst = summarize_host(to);
  FeatureSet dst_features = destination_features(to, dst);
  cpuid_reasons(s, to, dst_features, dst, c);
  xsave_reasons(s, to, dst, c);
  msr_reasons(s, to, dst_features, c);
  tsc_reasons(s, to, c);
  if (!to.kvm_cpuid)
    c.notes.push_back(to.name + " has no KVM_GET_SUPPORTED_CPUID in its profile: its raw CPUID plus what KVM "
                      "synthesises stood for what its KVM gives");
  c.ok = c.reasons.empty();
  return c;
}

std::string state_check_json(const StateCheck& c) {
  JsonWriter j;
  j.begin_object();
  j.field("ok", c.ok);
  j.field("snapshot", c.snapshot);
  j.key("hops").begin_array();
  j.begin_object();
  j.field("from", c.source).field("to", c.destination).field("ok", c.ok);
  j.key("reasons").strings(c.reasons);
  j.end_object();
  j.end_array();
  j.key("notes").strings(c.notes);
  j.end_object();
  return j.str() + "\n";
}

std::string state_check_text(const StateCheck& c) {
  std::string out = "snapshot " + c.snapshot + " (saved on " + c.source + ") -> " + c.destination + ": " +
                    (c.ok ? "ok" : "cannot resume") + "\n";
  // More than 4 missing features are grouped by CPUID word, as migrate-check --path shows them.
  size_t missing = 0;
  for (const auto& [who, set] : c.missing) missing += set.count();
  std::string lacks = "CPUID: " + c.destination + " lacks ", group;
  if (missing > 4)
    for (const auto& [who, set] : c.missing)
      group += "  " + lacks + num(set.count()) + " features of the saved guest's CPUID (in the CPUID of " + who +
               "):\n" + internal::feature_groups_text(set, "    ");
  out += internal::reason_lines(c.reasons, "  ", lacks, group);
  for (const auto& n : c.notes) out += "  note: " + n + "\n";
  out += c.ok ? "result: the saved guest can resume there\n" : "result: cannot resume\n";
  return out;
}

}  // namespace cpumodel
