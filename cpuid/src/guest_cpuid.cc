// The guest CPUID builder: definition + topology + host -> one table per vCPU, with QEMU 7.2's
// values (target/i386/cpu.c cpu_x86_cpuid, x86_cpu_expand_features, x86_cpu_filter_features) and
// the entry set QEMU hands to KVM_SET_CPUID2 (target/i386/kvm/kvm.c kvm_arch_init_vcpu).
#include "cpumodel/cpuid/guest_cpuid.h"

#include <algorithm>
#include <cstring>

#include "guest_cpuid_build.h"

namespace cpumodel {
namespace guest {
namespace {

// Named bits that are no configuration but state the guest OS sets (QEMU computes them from CR4).
constexpr unsigned kOsxsaveBit = 27;  // CPUID.01H:ECX
constexpr unsigned kOspkeBit = 4;     // CPUID.07H:ECX
constexpr unsigned kHypervisorBit = 31;
constexpr unsigned kHttBit = 28;
constexpr unsigned kCmpLegacyBit = 1;
// CPUID.01H:EDX bits AMD mirrors in CPUID.80000001H:EDX (QEMU's CPUID_EXT2_AMD_ALIASES).
constexpr uint32_t kAmdAliases = 0x0183F3FF;

uint32_t signature(const CpuDefinition& cpu) {
  uint32_t v = cpu.stepping & 0xf;
  v |= (cpu.model_number & 0xf) << 4 | ((cpu.model_number >> 4) & 0xf) << 16;
  if (cpu.family > 0xf)
    v |= 0xf00 | ((cpu.family - 0xf) & 0xff) << 20;
  else
    v |= cpu.family << 8;
  return v;
}

std::optional<FeatureId> id_of(const char* name) { return find_feature(name); }

// What the host's KVM can give a guest, with QEMU's additions (kvm_arch_get_supported_cpuid):
// the hypervisor bit, tsc-deadline and arat are emulated. A raw dump (no KVM_GET_SUPPORTED_CPUID)
// also gets KVM's emulated x2apic and the KVM paravirt leaf; MSR words whose MSR the profile does
// not report are unknown, not absent, and are not filtered.
FeatureSet host_supported(const HostProfile& host) {
  FeatureSet s = features_of(host.guest_cpuid(), host.guest_msrs());
  for (const char* n : {"hypervisor", "tsc-deadline", "arat"})
    if (auto id = id_of(n)) s.add(*id);
  bool raw = !host.kvm_cpuid.has_value();
  if (raw)
    if (auto id = id_of("x2apic")) s.add(*id);
  const MsrMap& msrs = host.guest_msrs();
  for (FeatureId id = 0; id < feature_count(); ++id) {
    const FeatureWordInfo& wi = word_info(feature(id).word);
    if (raw && !wi.is_msr && (wi.leaf_or_msr & 0xF0000000u) == 0x40000000u) s.add(id);
    if (wi.is_msr && !msrs.count(wi.leaf_or_msr)) s.add(id);
  }
  return s;
}

bool word_order(FeatureId a, FeatureId b) {
  const FeatureInfo &fa = feature(a), &fb = feature(b);
  if (fa.word != fb.word) return fa.word < fb.word;
  return fa.bit < fb.bit;
}

// check/enforce: drops what the host lacks, one warning per bit in QEMU's words; enforce fails.
Status filter_features(Build& b, const GuestCpuidOptions& options, GuestCpuid& out) {
  if (!b.host || (!options.check && !options.enforce)) return ok_status();
  FeatureSet missing = b.features - host_supported(*b.host);
  // Intel PT is only usable when the host's leaf 0x14 offers what QEMU reports (its minimum).
  if (auto pt = id_of("intel-pt"); pt && b.features.has(*pt) && !missing.has(*pt)) {
    const CpuidTable& h = b.host->guest_cpuid();
    CpuidRegs s0 = h.get(0x14, 0), s1 = h.get(0x14, 1);
    if (!s0.eax || (s0.ebx & 0xf) != 0xf || (s0.ecx & 0x7) != 0x7 || (s1.eax & 0x02490000) != 0x02490000 ||
        (s1.eax & 3) < 2 || (s1.ebx & 0x003f1fff) != 0x003f1fff)
      missing.add(*pt);
  }
  std::vector<FeatureId> ids = missing.ids();
  std::sort(ids.begin(), ids.end(), word_order);
  std::string list;
  for (FeatureId id : ids) {
    out.warnings.push_back("host doesn't support requested feature: " + describe_feature(id));
    list += (list.empty() ? "" : ", ") + describe_feature(id);
  }
  if (options.enforce && !ids.empty())
    return host_error("host '" + b.host->name + "' doesn't support requested features: " + list);
  b.features -= missing;
  out.dropped = missing;
  return ok_status();
}

// The XSAVE state components the features enable, with sizes and offsets from the host's leaf 0xD
// when it has them (QEMU: kvm_cpu_xsave_init), else the architectural values.
void plan_xsave(Build& b, std::vector<std::string>& warnings, bool check) {
  b.comps.assign(64, XsaveComponent{0, "", 0, 0, 0, false});
  for (const auto& c : xsave_components()) {
    XsaveComponent r = c;
    if (b.host && c.index >= 2) {
      CpuidRegs h = b.host->guest_cpuid().get(0xd, c.index);
      if (!h.eax) h = b.host->cpuid.get(0xd, c.index);
      if (h.eax) r.size = h.eax, r.offset = h.ebx, r.ecx = h.ecx;
    }
    b.comps[c.index] = r;
  }
  b.xcr0 = b.xss_words = 0;
  // QEMU (x86_cpu_enable_xsave_components) derives the components from the features before
  // filtering them, then filters the component mask on its own against the host's 0xD.0.
  if (!b.requested.has("xsave")) return;
  for (const auto& c : xsave_components())
    if (b.requested.has(c.feature)) (c.supervisor ? b.xss_words : b.xcr0) |= 1ull << c.index;
  if (!b.host || !check) return;
  const CpuidTable& h = b.host->guest_cpuid();
  if (!h.has(0xd, 0)) return;
  uint64_t host_xcr0 = h.get(0xd, 0).eax | uint64_t{h.get(0xd, 0).edx} << 32;
  uint64_t lacking = b.xcr0 & ~host_xcr0;
  for (unsigned i = 0; i < 64; ++i)
    if (lacking >> i & 1)
      warnings.push_back("host doesn't support requested feature: CPUID.0DH:" + std::string(i < 32 ? "EAX" : "EDX") +
                         " [bit " + std::to_string(i % 32) + "]");
  b.xcr0 &= host_xcr0;
}

// QEMU raises level/xlevel/xlevel2 (and leaf 7's max subleaf) to cover every feature word in use.
void plan_levels(Build& b) {
  b.level = b.cpu.level;
  b.xlevel = b.cpu.xlevel;
  b.xlevel2 = b.cpu.xlevel2;
  b.func7 = 0;
  for (const auto& wi : feature_words()) {
    if (wi.is_msr || !b.words.reg_value(wi.leaf_or_msr, wi.subleaf, wi.reg)) continue;
    uint32_t leaf = wi.leaf_or_msr;
    switch (leaf & 0xF0000000u) {
      case 0x00000000u: b.level = std::max(b.level, leaf); break;
      case 0x80000000u: b.xlevel = std::max(b.xlevel, leaf); break;
      case 0xC0000000u: b.xlevel2 = std::max(b.xlevel2, leaf); break;
      default: break;
    }
    if (leaf == 7) b.func7 = std::max(b.func7, wi.subleaf);
  }
  if (b.has("intel-pt")) b.level = std::max<uint32_t>(b.level, 0x14);
  if (b.topo.dies > 1 && b.intel) b.level = std::max<uint32_t>(b.level, 0x1f);
  if (b.has("svm")) b.xlevel = std::max<uint32_t>(b.xlevel, 0x8000000a);
  if (b.has("sgx")) b.level = std::max<uint32_t>(b.level, 0x12);
}

void plan_address_sizes(Build& b, std::vector<std::string>& warnings) {
  bool lm = b.has("lm");
  if (!lm) {
    b.phys_bits = b.has("pse36") ? 36 : 32;
    b.virt_bits = 0;
    return;
  }
  b.virt_bits = b.has("la57") ? 57 : 48;
  b.phys_bits = 40;  // QEMU's TCG_PHYS_ADDR_BITS, also its KVM default
  if (b.cpu.phys_bits) {
    b.phys_bits = *b.cpu.phys_bits;
  } else if (b.cpu.host_phys_bits) {
    uint32_t host_bits = b.host ? b.host->cpuid.get(0x80000008).eax & 0xff : 0;
    if (host_bits)
      b.phys_bits = host_bits;
    else
      warnings.push_back("host-phys-bits needs the host's CPUID leaf 80000008H (--host); using 40 bits");
  }
}

void topology_warnings(const Build& b, const SmpConfig& smp, std::vector<std::string>& warnings) {
  if (b.host && b.host->topology.known() && smp.cpus > b.host->topology.online_cpus)
    warnings.push_back(std::to_string(smp.cpus) + " vCPUs exceed host '" + b.host->name + "''s " +
                       std::to_string(b.host->topology.online_cpus) +
                       " CPUs: one guest with more vCPUs than host CPUs performs badly");
  if (b.amd && !b.has("topoext") && b.topo.threads > 1)
    warnings.push_back("This family of AMD CPU doesn't support hyperthreading(" + std::to_string(b.topo.threads) +
                       "); configure -smp without threads or enable topoext");
}

// Feature bits into their words, plus the bits QEMU derives rather than configures.
void plan_words(Build& b) {
  b.words = CpuidTable();
  b.msrs.clear();
  apply_features(b.features, b.words, &b.msrs);
  b.words.set_bit(1, 0, Reg::kEcx, kOsxsaveBit, false);
  b.words.set_bit(7, 0, Reg::kEcx, kOspkeBit, false);
  b.words.set_bit(1, 0, Reg::kEcx, kHypervisorBit, true);
  if (!b.cpu.pmu)
    if (auto id = id_of("pdcm")) b.words.set_bit(1, 0, Reg::kEcx, feature(*id).bit, false);
  if (b.logical_per_die() > 1) {
    b.words.set_bit(1, 0, Reg::kEdx, kHttBit, true);
    if (!b.intel) b.words.set_bit(0x80000001, 0, Reg::kEcx, kCmpLegacyBit, true);
  }
  if (b.amd) {
    uint32_t& e = b.words.reg(0x80000001, 0, Reg::kEdx);
    e = (e & ~kAmdAliases) | (b.words.reg_value(1, 0, Reg::kEdx) & kAmdAliases);
  }
}

Result<Build> plan(const CpuDefinition& cpu, const SmpConfig& smp, const HostProfile* host,
                   const GuestCpuidOptions& options, GuestCpuid& out) {
  if (cpu.vendor.size() != 12)
    return input_error("CPU model '" + cpu.model + "': vendor '" + cpu.vendor + "' is not 12 characters");
  if (!smp.sockets || !smp.dies || !smp.cores || !smp.threads || !smp.cpus || smp.cpus > smp.maxcpus ||
      1ull * smp.sockets * smp.dies * smp.cores * smp.threads != smp.maxcpus)
    return input_error("smp '" + format_smp(smp) + "' is inconsistent");
  if (smp.maxcpus > 4096) return input_error("smp '" + format_smp(smp) + "': more than 4096 vCPUs");
  Build b(cpu, host, smp);
  b.features = b.requested = cpu.features;
  b.intel = cpu.vendor == "GenuineIntel";
  b.amd = cpu.vendor == "AuthenticAMD";
  if (auto st = filter_features(b, options, out); !st) return st.error();
  b.version = signature(cpu);
  plan_words(b);
  plan_levels(b);
  plan_xsave(b, out.warnings, options.check || options.enforce);
  plan_address_sizes(b, out.warnings);
  topology_warnings(b, smp, out.warnings);
  b.caches = cache_views(cpu);
  return b;
}

}  // namespace
}  // namespace guest

Result<GuestCpuid> build_guest_cpuid(const CpuDefinition& cpu, const SmpConfig& smp, const HostProfile* host,
                                     const GuestCpuidOptions& options) {
  GuestCpuid out;
  auto b = guest::plan(cpu, smp, host, options, out);
  if (!b) return b.error();
  CpuidTable base = guest::build_template(*b);
  out.vcpus.reserve(smp.cpus);
  out.tables.reserve(smp.cpus);
  for (unsigned i = 0; i < smp.cpus; ++i) {
    VcpuPlace p = b->topo.place(i);
    out.vcpus.push_back(p);
    out.tables.push_back(base);
    guest::apply_vcpu(*b, p, out.tables.back());
  }
  out.features = b->features;
  out.msrs = b->msrs;
  out.smp = smp;
  return out;
}

}  // namespace cpumodel
