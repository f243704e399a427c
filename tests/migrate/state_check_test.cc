// migrate-check --state verdicts: saved guests of different models, each started on a real host
// (a dump of ../shared/data/cpuid-dumps), checked against other real hosts. The expected verdicts
// were derived by hand from the dumps and the models (reasoning beside each pair), not copied
// from this code's output.
//
// How a saved guest is made here: the model is expanded and filtered against the source dump (as
// QEMU's default `check` does), its CPUID built for 2 vCPUs, XCR0 set to every user XSAVE component
// the guest CPUID offers (what Linux enables), and the MSRs a snapshot saves for that CPUID (as if
// the source KVM listed every MSR of the table); its TSC is the source's nominal frequency.
#include <gtest/gtest.h>

#include <cmath>

#include "cpumodel/cpuid/guest_cpuid.h"
#include "cpumodel/cpuid/profile.h"
#include "cpumodel/migrate/state_check.h"
#include "cpumodel/models/catalog.h"

namespace cpumodel {
namespace {

const std::string kDumps = std::string(CPUMODEL_SHARED_DIR) + "/data/cpuid-dumps/x86_64-cpuid-";

HostProfile dump(const std::string& name, bool tsc_scaling = false) {
  auto p = load_profile(kDumps + name + ".xml");
  EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
  if (!p) return {};
  if (tsc_scaling) p->facts["tsc_scaling"] = "yes";  // a destination whose KVM has TSC_CONTROL
  return *p;
}

const Catalog& catalog() {
  static const Catalog c = [] {
    auto cat = Catalog::load_default();
    EXPECT_TRUE(cat.ok()) << (cat.ok() ? "" : cat.error().message);
    return cat.ok() ? std::move(*cat) : Catalog{};
  }();
  return c;
}

Snapshot saved_guest(const std::string& spec, const HostProfile& source) {
  Snapshot s;
  auto e = catalog().expand(spec, &source, /*filter_by_host=*/true);
  EXPECT_TRUE(e.ok()) << spec << ": " << (e.ok() ? "" : e.error().message);
  if (!e) return s;
  auto smp = parse_smp("2");
  auto g = build_guest_cpuid(e->cpu, *smp, &source);
  EXPECT_TRUE(g.ok()) << (g.ok() ? "" : g.error().message);
  if (!g) return s;
  std::vector<uint32_t> every;
  for (const auto& row : state_msr_table())
    for (uint32_t i = row.index; i < row.index + row.count; ++i) every.push_back(i);
  auto [tsc, from] = destination_tsc_khz(source);
  for (size_t i = 0; i < g->tables.size(); ++i) {
    VcpuState v;
    v.index = static_cast<uint32_t>(i);
    v.apic_id = g->vcpus[i].apic_id;
    v.cpuid = g->tables[i];
    CpuidRegs d0 = v.cpuid.get(0xd, 0);
    v.xcrs = std::vector<std::pair<uint32_t, uint64_t>>{{0, (uint64_t{d0.edx} << 32 | d0.eax) | 1}};
    for (uint32_t m : msrs_to_save(every, v.cpuid)) {
      auto fm = g->msrs.find(m);
      v.msrs.push_back({m, fm == g->msrs.end() ? 0 : fm->second});
    }
    v.tsc_khz = static_cast<uint32_t>(std::llround(tsc));
    v.xsave.assign(kXsaveLegacySize, 0);
    s.state.vcpus.push_back(std::move(v));
  }
  s.header.cpu_spec = spec;
  s.header.cpu_model = e->cpu.model;
  s.header.source.vendor = source.cpuid.vendor();
  s.header.source.signature = source.cpuid.get(1).eax;
  s.header.source.hostname = source.name;
  s.header.source.kvm_backend = source.cpuid.vendor() == "AuthenticAMD" ? "kvm_amd" : "kvm_intel";
  s.header.source.tsc_khz = static_cast<uint32_t>(std::llround(tsc));
  return s;
}

std::string all(const StateCheck& c) {
  std::string s;
  for (const auto& r : c.reasons) s += "  " + r + "\n";
  for (const auto& n : c.notes) s += "  note: " + n + "\n";
  return s;
}

size_t count_starting(const StateCheck& c, const std::string& prefix) {
  size_t n = 0;
  for (const auto& r : c.reasons) n += r.rfind(prefix, 0) == 0;
  return n;
}

bool has_reason(const StateCheck& c, const std::string& part) {
  for (const auto& r : c.reasons)
    if (r.find(part) != std::string::npos) return true;
  return false;
}

StateCheck verdict(const std::string& spec, const std::string& from, const std::string& to, bool scaling = false) {
  Snapshot s = saved_guest(spec, dump(from));
  return check_state(s, spec + "@" + from, dump(to, scaling));
}

// 1. Haswell-noTSX started on a Xeon E5-2650 v3, back onto the same host: same vendor, same
//    features, same XSAVE layout, same nominal TSC (brand string "@ 2.30GHz" on both sides).
TEST(StateCheck, SameHostResumes) {
  auto c = verdict("Haswell-noTSX", "Xeon-E5-2650-v3", "Xeon-E5-2650-v3");
  EXPECT_TRUE(c.ok) << all(c);
}

// 2. Same guest onto an E5-2650 v4 (Broadwell-EP): Broadwell has every Haswell feature and the
//    same AVX layout (576, 256 bytes), but its TSC runs at 2.20 GHz against 2.30 GHz (43,000 ppm)
//    and nothing in a CPUID dump says an Intel host can scale: exactly one reason, the TSC.
TEST(StateCheck, NewerIntelWithADifferentTscFailsOnTheTscAlone) {
  auto c = verdict("Haswell-noTSX", "Xeon-E5-2650-v3", "Xeon-E5-2650-v4");
  EXPECT_FALSE(c.ok);
  ASSERT_EQ(c.reasons.size(), 1u) << all(c);
  EXPECT_EQ(count_starting(c, "TSC: "), 1u) << all(c);
  EXPECT_TRUE(has_reason(c, "2200000 kHz (brand string)")) << all(c);
}

// 3. The same pair when the destination's KVM can scale the TSC (KVM_CAP_TSC_CONTROL): ok.
TEST(StateCheck, TscScalingOnTheDestinationMakesItOk) {
  auto c = verdict("Haswell-noTSX", "Xeon-E5-2650-v3", "Xeon-E5-2650-v4", true);
  EXPECT_TRUE(c.ok) << all(c);
}

// 4. Haswell-noTSX from an E5-2650 v3 onto an E5-2630 v3: same microarchitecture, TSC 2.40 GHz
//    against 2.30 GHz: the TSC is the only reason.
TEST(StateCheck, SameMicroarchitectureOtherFrequency) {
  auto c = verdict("Haswell-noTSX", "Xeon-E5-2650-v3", "Xeon-E5-2630-v3");
  EXPECT_FALSE(c.ok);
  ASSERT_EQ(c.reasons.size(), 1u) << all(c);
  EXPECT_EQ(count_starting(c, "TSC: "), 1u);
}

// 5. Skylake-Server started on a Gold 6148, onto a Gold 6130 with TSC scaling: both Skylake-SP,
//    same AVX-512 state components at the same offsets: ok.
TEST(StateCheck, Avx512GuestOntoAnotherSkylakeServer) {
  auto c = verdict("Skylake-Server", "Xeon-Gold-6148", "Xeon-Gold-6130", true);
  EXPECT_TRUE(c.ok) << all(c);
}

// 6. The same Skylake-Server guest onto an E5-2650 v4 (Broadwell, scaling on): Broadwell has no
//    AVX-512 and no protection keys: CPUID lacks avx512f/avx512vl/pku, and XCR0's opmask (5),
//    zmm_hi256 (6), hi16_zmm (7) and pkru (9) components cannot be restored there. No vendor or
//    TSC reason.
TEST(StateCheck, Avx512GuestOntoBroadwellLacksFeaturesAndXsaveComponents) {
  auto c = verdict("Skylake-Server", "Xeon-Gold-6148", "Xeon-E5-2650-v4", true);
  EXPECT_FALSE(c.ok);
  for (const char* f : {"avx512f [bit 16]", "avx512vl [bit 31]", "pku [bit 3]"})
    EXPECT_TRUE(has_reason(c, std::string("CPUID: Xeon-E5-2650-v4 lacks CPUID.07H:") + (f[0] == 'p' ? "ECX." : "EBX.") + f))
        << f << "\n" << all(c);
  for (const char* comp : {"component 5 (opmask)", "component 6 (zmm_hi256)", "component 7 (hi16_zmm)", "component 9 (pkru)"})
    EXPECT_TRUE(has_reason(c, std::string("XSAVE: Xeon-E5-2650-v4 lacks state ") + comp)) << comp << "\n" << all(c);
  EXPECT_EQ(count_starting(c, "vendor"), 0u);
  EXPECT_EQ(count_starting(c, "TSC"), 0u);
  // For people the missing features are grouped by CPUID word (the JSON keeps one reason each).
  size_t missing = 0;
  for (const auto& [who, set] : c.missing) missing += set.count();
  ASSERT_GT(missing, 4u);
  std::string text = state_check_text(c);
  EXPECT_NE(text.find("lacks " + std::to_string(missing) + " features of the saved guest's CPUID"), std::string::npos)
      << text;
  EXPECT_NE(text.find("\n    CPUID.07H:EBX "), std::string::npos) << text;
  EXPECT_EQ(text.find("lacks CPUID.07H:EBX.avx512f"), std::string::npos) << text;
  EXPECT_NE(text.find("XSAVE: Xeon-E5-2650-v4 lacks state component 5 (opmask)"), std::string::npos) << text;
}

// 7. EPYC-Rome started on an EPYC 7502, onto an EPYC 7713 (Milan): Milan has every Rome feature;
//    AMD dumps give no TSC frequency (no leaf 15H/16H, no "@" in the brand) but both have
//    TscRateMsr (CPUID.8000000AH:EDX[4]): ok, with a note that the TSC was not judged.
TEST(StateCheck, RomeGuestOntoMilanIsOk) {
  auto c = verdict("EPYC-Rome", "EPYC-7502-32-Core", "EPYC-7713-64-Core");
  EXPECT_TRUE(c.ok) << all(c);
  EXPECT_NE(all(c).find("no TSC frequency"), std::string::npos) << all(c);
}

// 8. The Rome guest onto a Gold 6148: another vendor. The vendor reason comes first, and AMD-only
//    features (sse4a: CPUID.80000001H:ECX[6]) are missing too.
TEST(StateCheck, AmdGuestOntoIntelFailsOnVendor) {
  auto c = verdict("EPYC-Rome", "EPYC-7502-32-Core", "Xeon-Gold-6148");
  EXPECT_FALSE(c.ok);
  ASSERT_FALSE(c.reasons.empty());
  EXPECT_EQ(c.reasons[0], "vendor: the guest was saved on a AuthenticAMD host, Xeon-Gold-6148 is GenuineIntel");
  EXPECT_TRUE(has_reason(c, "sse4a")) << all(c);
}

// 9. Haswell-noTSX onto a Core 2 Duo E6850: no AVX, AVX2, FMA, BMI, MOVBE, XSAVE...; the AVX
//    component (2) of XCR0 cannot be restored (x87 and SSE can: every x86-64 host has them); the
//    TSC is 3.00 GHz against 2.30 GHz.
TEST(StateCheck, HaswellGuestOntoCore2) {
  auto c = verdict("Haswell-noTSX", "Xeon-E5-2650-v3", "Core2-E6850");
  EXPECT_FALSE(c.ok);
  for (const char* f : {"CPUID.01H:ECX.avx [bit 28]", "CPUID.07H:EBX.avx2 [bit 5]", "CPUID.01H:ECX.fma [bit 12]",
                        "CPUID.01H:ECX.movbe [bit 22]", "CPUID.01H:ECX.xsave [bit 26]"})
    EXPECT_TRUE(has_reason(c, std::string("lacks ") + f)) << f << "\n" << all(c);
  EXPECT_TRUE(has_reason(c, "XSAVE: Core2-E6850 lacks state component 2 (avx)")) << all(c);
  EXPECT_FALSE(has_reason(c, "component 0 (x87)") || has_reason(c, "component 1 (sse)")) << all(c);
  EXPECT_EQ(count_starting(c, "TSC: "), 1u) << all(c);
}

// 10. qemu64 (a baseline every x86-64 CPU runs) from an Intel E5-2650 v3 onto an AMD Opteron 2350:
//     every feature is there; the vendor differs; the Opteron's TSC frequency is unknown (no
//     frequency in its brand string) and K10 has no TscRateMsr: vendor and TSC, nothing else.
TEST(StateCheck, BaselineGuestAcrossVendorsFailsOnVendorAndTsc) {
  auto c = verdict("qemu64", "Xeon-E5-2650-v3", "Opteron-2350");
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.reasons.size(), 2u) << all(c);
  EXPECT_EQ(count_starting(c, "vendor: "), 1u) << all(c);
  EXPECT_TRUE(has_reason(c, "TSC: Opteron-2350's TSC frequency is unknown")) << all(c);
}

// 11. Cascadelake-Server-v2 (v1 + arch-capabilities and its MSR bits) started on a Platinum 8268,
//     onto a Gold 6148 (Skylake-SP, scaling on). The 8268 dump has avx512vnni, spec-ctrl, ssbd and
//     arch-capabilities in CPUID; the 6148 dump (older microcode) has none of them. The MSR bits of
//     v2 (rdctl-no, mds-no...) are filtered at start: a CPUID dump carries no MSR values. So: CPUID
//     lacks avx512vnni, spec-ctrl, ssbd, arch-capabilities; and the saved IA32_SPEC_CTRL and
//     IA32_ARCH_CAPABILITIES cannot be restored there (KVM refuses them without those bits).
TEST(StateCheck, CascadeLakeGuestOntoSkylakeLacksVnniSpecCtrlAndArchCapabilities) {
  auto c = verdict("Cascadelake-Server-v2", "Xeon-Platinum-8268", "Xeon-Gold-6148", true);
  EXPECT_FALSE(c.ok);
  for (const char* f : {"CPUID.07H:ECX.avx512vnni [bit 11]", "CPUID.07H:EDX.spec-ctrl [bit 26]",
                        "CPUID.07H:EDX.ssbd [bit 31]", "CPUID.07H:EDX.arch-capabilities [bit 29]"})
    EXPECT_TRUE(has_reason(c, std::string("Xeon-Gold-6148 lacks ") + f)) << f << "\n" << all(c);
  EXPECT_TRUE(has_reason(c, "MSR: MSR 48H (IA32_SPEC_CTRL) cannot be restored on Xeon-Gold-6148")) << all(c);
  EXPECT_TRUE(has_reason(c, "MSR: MSR 10AH (IA32_ARCH_CAPABILITIES) cannot be restored on Xeon-Gold-6148")) << all(c);
  EXPECT_EQ(count_starting(c, "TSC"), 0u) << "scaling on";
}

// 12. Broadwell-noTSX started on a Core i7-7700 (Kaby Lake), onto a Core i5-6600 (Skylake): same
//     features for this model. TSC: 3.30 GHz against 3.60 GHz (CPUID.16H base frequencies). And
//     phys-bits: both CPUs have 39 (CPUID.80000008H:EAX = 0x3027), but the guest has QEMU's
//     default of 40 (phys-bits is not host-phys-bits), more than the destination's: two reasons.
TEST(StateCheck, ClientPairDiffersInTscAndPhysBits) {
  auto c = verdict("Broadwell-noTSX", "Core-i7-7700", "Core-i5-6600");
  EXPECT_FALSE(c.ok);
  ASSERT_EQ(c.reasons.size(), 2u) << all(c);
  EXPECT_TRUE(has_reason(c, "3300000 kHz (CPUID.16H)")) << all(c);
  EXPECT_TRUE(has_reason(c, "phys-bits: the guest has 40 (CPUID.80000008H:EAX[7:0]), Core-i5-6600 has 39")) << all(c);
}

TEST(StateCheck, JsonKeepsMigrateChecksSchema) {
  auto c = verdict("Haswell-noTSX", "Xeon-E5-2650-v3", "Xeon-E5-2650-v4");
  std::string j = state_check_json(c);
  EXPECT_NE(j.find("\"ok\": false"), std::string::npos) << j;
  EXPECT_NE(j.find("\"hops\": ["), std::string::npos);
  EXPECT_NE(j.find("\"to\": \"Xeon-E5-2650-v4\""), std::string::npos);
  EXPECT_NE(j.find("\"reasons\": ["), std::string::npos);
  EXPECT_NE(state_check_text(c).find("result: cannot resume"), std::string::npos);
}

TEST(StateCheck, DestinationTscSources) {
  HostProfile p;
  p.tsc_khz = 2999000;
  EXPECT_EQ(destination_tsc_khz(p).second, "profile");
  auto e5 = dump("Xeon-E5-2650-v3");
  auto [khz, from] = destination_tsc_khz(e5);
  EXPECT_EQ(from, "brand string");
  EXPECT_DOUBLE_EQ(khz, 2300000);
}

}  // namespace
}  // namespace cpumodel
