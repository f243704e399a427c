// The guest CPUID builder. Expected topology values are derived BY HAND in each test from QEMU
// 7.2's formulas (include/hw/i386/topology.h: each APIC ID field is ceil(log2(count)) bits;
// target/i386/cpu.c cpu_x86_cpuid: leaf 1 EBX[23:16] = cores*threads, leaf 4 EAX[31:26] =
// cores-1, L1/L2/L3 sharing = 1 / threads / 1<<die_offset, leaf 0xB/0x1F shifts and counts,
// 0x8000001E IDs), not copied from the builder's output. XSAVE sizes are checked against real
// CPUs' leaf 0xD in ../shared/data/cpuid-dumps.
#include "cpumodel/cpuid/guest_cpuid.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cpumodel/cpuid/profile.h"

namespace cpumodel {
namespace {

FeatureSet features(const std::vector<std::string>& names) {
  FeatureSet s;
  for (const auto& n : names) {
    auto id = find_feature(n);
    EXPECT_TRUE(id) << "dictionary lacks " << n;
    if (id) s.add(*id);
  }
  return s;
}

const std::vector<std::string> kBase = {"fpu", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep",
                                        "mtrr", "pge", "mca", "cmov", "pat", "pse36", "clflush", "mmx", "fxsr",
                                        "sse", "sse2", "syscall", "nx", "lm", "pni", "cx16", "popcnt"};

CpuDefinition intel(std::vector<std::string> extra = {}) {
  CpuDefinition d;
  d.model = "Test-Intel";
  d.vendor = "GenuineIntel";
  d.family = 6, d.model_number = 60, d.stepping = 4;
  d.level = 0xd, d.xlevel = 0x80000008;
  d.model_id = "Test Intel CPU";
  std::vector<std::string> all = kBase;
  all.insert(all.end(), extra.begin(), extra.end());
  d.features = features(all);
  return d;
}

CpuDefinition amd(std::vector<std::string> extra = {}) {
  CpuDefinition d = intel(std::move(extra));
  d.model = "Test-AMD";
  d.vendor = "AuthenticAMD";
  d.family = 23, d.model_number = 49, d.stepping = 0;
  d.level = 0x10, d.xlevel = 0x8000001e;
  d.features |= features({"topoext"});
  return d;
}

SmpConfig smp(const char* text) {
  auto r = parse_smp(text);
  EXPECT_TRUE(r) << text << ": " << (r ? "" : r.error().message);
  return r ? *r : SmpConfig{};
}

GuestCpuid build(const CpuDefinition& d, const char* s, const HostProfile* host = nullptr,
                 GuestCpuidOptions o = {}) {
  auto r = build_guest_cpuid(d, smp(s), host, o);
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  return r ? *r : GuestCpuid{};
}

// A shape and its APIC IDs worked out by hand with QEMU's field widths.
struct Shape {
  const char* smp;
  unsigned threads, cores, dies;
  unsigned smt_width, core_width, die_width;
  std::vector<uint32_t> apic_ids;  // index order
};

const std::vector<Shape>& shapes() {
  static const std::vector<Shape> kShapes = {
      {"1", 1, 1, 1, 0, 0, 0, {0}},
      {"4,sockets=2,cores=2", 1, 2, 1, 0, 1, 0, {0, 1, 2, 3}},
      {"8,sockets=1,cores=4,threads=2", 2, 4, 1, 1, 2, 0, {0, 1, 2, 3, 4, 5, 6, 7}},
      // 3 cores need 2 bits: socket 1 starts at 4, and ID 3 is a gap.
      {"6,sockets=2,cores=3", 1, 3, 1, 0, 2, 0, {0, 1, 2, 4, 5, 6}},
      // 6 threads need 3 bits: core 1 starts at 8.
      {"12,sockets=1,cores=2,threads=6", 6, 2, 1, 3, 1, 0, {0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13}},
      // 2 dies x 3 cores x 2 threads: thread 1 bit, core 2 bits, die 1 bit, package shift 4.
      {"24,sockets=2,dies=2,cores=3,threads=2", 2, 3, 2, 1, 2, 1,
       {0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, 16, 17, 18, 19, 20, 21, 24, 25, 26, 27, 28, 29}},
  };
  return kShapes;
}

TEST(Topology, ApicIdsFollowQemuFieldWidths) {
  for (const auto& sh : shapes()) {
    SmpConfig s = smp(sh.smp);
    auto places = vcpu_places(s);
    ASSERT_EQ(places.size(), sh.apic_ids.size()) << sh.smp;
    for (size_t i = 0; i < places.size(); ++i) {
      EXPECT_EQ(places[i].apic_id, sh.apic_ids[i]) << sh.smp << " vCPU " << i;
      EXPECT_EQ(apic_id_of(s, static_cast<unsigned>(i)), sh.apic_ids[i]);
      EXPECT_EQ(places[i].thread, i % sh.threads);
      EXPECT_EQ(places[i].core, i / sh.threads % sh.cores);
      EXPECT_EQ(places[i].die, i / (sh.threads * sh.cores) % sh.dies);
      EXPECT_EQ(places[i].socket, i / (sh.threads * sh.cores * sh.dies));
    }
  }
}

TEST(Topology, MaxcpusReservesIdsForHotplug) {
  SmpConfig s = smp("4,maxcpus=8,sockets=2,cores=2,threads=2");
  EXPECT_EQ(vcpu_places(s).size(), 8u);
  GuestCpuid g = build(intel(), "4,maxcpus=8,sockets=2,cores=2,threads=2");
  ASSERT_EQ(g.tables.size(), 4u);
  // Hot-pluggable vCPUs 4..7 live in socket 1: APIC IDs 4..7 stay free for them.
  EXPECT_EQ(vcpu_places(s)[4].apic_id, 4u);
  EXPECT_EQ(vcpu_places(s)[4].socket, 1u);
  EXPECT_EQ(g.vcpus.back().apic_id, 3u);
}

TEST(GuestLeaves, Leaf1PerShape) {
  for (const auto& sh : shapes()) {
    GuestCpuid g = build(intel(), sh.smp);
    unsigned per_die = sh.cores * sh.threads;
    for (size_t i = 0; i < g.tables.size(); ++i) {
      CpuidRegs r = g.tables[i].get(1);
      EXPECT_EQ(r.eax, 0x000306c4u);  // family 6, model 60 (0x3c), stepping 4
      EXPECT_EQ(r.ebx >> 24, sh.apic_ids[i]) << sh.smp;
      EXPECT_EQ((r.ebx >> 16) & 0xff, per_die > 1 ? per_die : 0u) << sh.smp;
      EXPECT_EQ((r.ebx >> 8) & 0xff, 8u);  // CLFLUSH 64 bytes
      EXPECT_EQ(r.edx >> 28 & 1, per_die > 1 ? 1u : 0u) << "HTT " << sh.smp;
      EXPECT_EQ(r.ecx >> 31, 1u) << "hypervisor";
    }
  }
}

TEST(GuestLeaves, Leaf4PerShape) {
  for (const auto& sh : shapes()) {
    GuestCpuid g = build(intel(), sh.smp);
    const CpuidTable& t = g.tables[0];
    unsigned die_offset = sh.smt_width + sh.core_width;
    // Legacy caches: L1d 32K 8-way 64 sets, L1i same, L2 4M 16-way 4096 sets, L3 16M 16-way.
    uint32_t cores = (sh.cores - 1) << 26;
    EXPECT_EQ(t.get(4, 0).eax, 0x121u | cores) << sh.smp;
    EXPECT_EQ(t.get(4, 0).ebx, 63u | (7u << 22));
    EXPECT_EQ(t.get(4, 0).ecx, 63u);
    EXPECT_EQ(t.get(4, 1).eax, 0x122u | cores);
    EXPECT_EQ(t.get(4, 2).eax, 0x143u | cores | (sh.threads - 1) << 14) << sh.smp;
    EXPECT_EQ(t.get(4, 2).ecx, 4095u);
    EXPECT_EQ(t.get(4, 3).eax, 0x163u | cores | ((1u << die_offset) - 1) << 14) << sh.smp;
    EXPECT_EQ(t.get(4, 3).edx, 6u);  // inclusive, complex indexing
    EXPECT_TRUE(t.has(4, 4));
    EXPECT_TRUE(t.get(4, 4).zero());  // the terminator QEMU hands KVM
  }
}

TEST(GuestLeaves, Leaf4And2AreZeroForAmd) {
  GuestCpuid g = build(amd(), "2");
  EXPECT_TRUE(g.tables[0].get(4, 0).zero());
  EXPECT_TRUE(g.tables[0].get(2).zero());
  GuestCpuid i = build(intel(), "2");
  CpuidRegs l2 = i.tables[0].get(2);
  EXPECT_EQ(l2.eax, 1u);
  EXPECT_EQ(l2.ecx, 0x4du);        // L3 16M 16-way
  EXPECT_EQ(l2.edx, 0x2c307du);    // L1d 0x2c, L1i 0x30, L2 2M 8-way 0x7d
}

TEST(GuestLeaves, Leaf0BPerShape) {
  for (const auto& sh : shapes()) {
    GuestCpuid g = build(intel(), sh.smp);
    unsigned pkg_offset = sh.smt_width + sh.core_width + sh.die_width;
    for (size_t i = 0; i < g.tables.size(); ++i) {
      const CpuidTable& t = g.tables[i];
      EXPECT_EQ(t.get(0xb, 0).eax, sh.smt_width) << sh.smp;
      EXPECT_EQ(t.get(0xb, 0).ebx, sh.threads);
      EXPECT_EQ(t.get(0xb, 0).ecx, 0x100u);
      EXPECT_EQ(t.get(0xb, 1).eax, pkg_offset) << sh.smp;
      EXPECT_EQ(t.get(0xb, 1).ebx, sh.cores * sh.threads);
      EXPECT_EQ(t.get(0xb, 1).ecx, 0x201u);
      EXPECT_EQ(t.get(0xb, 2).ecx, 2u);  // invalid level ends the list
      for (uint32_t s = 0; s < 3; ++s) EXPECT_EQ(t.get(0xb, s).edx, sh.apic_ids[i]);
    }
  }
}

TEST(GuestLeaves, Leaf1FOnlyWithDies) {
  for (const auto& sh : shapes()) {
    GuestCpuid g = build(intel(), sh.smp);
    const CpuidTable& t = g.tables.back();
    if (sh.dies == 1) {
      EXPECT_FALSE(t.has(0x1f, 0)) << sh.smp;
      EXPECT_EQ(t.max_basic(), 0xdu);
      continue;
    }
    EXPECT_EQ(t.max_basic(), 0x1fu);  // raised for Intel with dies > 1
    unsigned die_offset = sh.smt_width + sh.core_width;
    EXPECT_EQ(t.get(0x1f, 0).eax, sh.smt_width);
    EXPECT_EQ(t.get(0x1f, 1).eax, die_offset);
    EXPECT_EQ(t.get(0x1f, 1).ebx, sh.cores * sh.threads);
    EXPECT_EQ(t.get(0x1f, 2).eax, die_offset + sh.die_width);
    EXPECT_EQ(t.get(0x1f, 2).ebx, sh.dies * sh.cores * sh.threads);
    EXPECT_EQ(t.get(0x1f, 2).ecx, 0x502u);  // die level
    EXPECT_EQ(t.get(0x1f, 3).ecx, 3u);
    EXPECT_EQ(t.get(0x1f, 3).edx, sh.apic_ids.back());
  }
  // AMD keeps its level with dies (QEMU: only Intel needs 0x1F).
  GuestCpuid a = build(amd(), "8,sockets=1,dies=2,cores=4");
  EXPECT_EQ(a.tables[0].max_basic(), 0x10u);
}

TEST(GuestLeaves, Leaf8000001EPerShape) {
  for (const auto& sh : shapes()) {
    GuestCpuid g = build(amd(), sh.smp);
    unsigned die_offset = sh.smt_width + sh.core_width;
    for (size_t i = 0; i < g.tables.size(); ++i) {
      CpuidRegs r = g.tables[i].get(0x8000001e);
      uint32_t apic = sh.apic_ids[i];
      EXPECT_EQ(r.eax, apic) << sh.smp;
      EXPECT_EQ(r.ebx, (sh.threads - 1) << 8 | g.vcpus[i].core) << sh.smp;
      EXPECT_EQ(r.ecx, (sh.dies - 1) << 8 | (apic >> die_offset)) << sh.smp;
    }
    // 0x8000001D: L3 shared by the die's cores*threads, the rest by a core's threads.
    const CpuidTable& t = g.tables[0];
    EXPECT_EQ((t.get(0x8000001d, 0).eax >> 14) & 0xfff, sh.threads - 1);
    EXPECT_EQ((t.get(0x8000001d, 3).eax >> 14) & 0xfff, sh.cores * sh.threads - 1);
    EXPECT_TRUE(t.has(0x8000001d, 4) && t.get(0x8000001d, 4).zero());
    // 0x80000008 ECX: package shift and logical count - 1 (QEMU sets it for any vendor).
    unsigned n = sh.cores * sh.threads;
    EXPECT_EQ(t.get(0x80000008).ecx, n > 1 ? (die_offset + sh.die_width) << 12 | (n - 1) : 0u) << sh.smp;
  }
}

TEST(GuestLeaves, AmdMirrorsLeaf1EdxAndSetsCmpLegacy) {
  GuestCpuid g = build(amd(), "4,cores=4");
  CpuidRegs e1 = g.tables[0].get(0x80000001);
  EXPECT_EQ(e1.edx & 0x0183F3FF, g.tables[0].get(1).edx & 0x0183F3FF);
  EXPECT_EQ(e1.ecx >> 1 & 1, 1u);
  EXPECT_EQ(e1.eax, g.tables[0].get(1).eax);
  EXPECT_EQ(g.tables[0].get(1).eax, 0x00830f10u);  // family 23 = 0xf + 8, model 0x31
  GuestCpuid i = build(intel(), "4,cores=4");
  EXPECT_EQ(i.tables[0].get(0x80000001).ecx >> 1 & 1, 0u) << "no CmpLegacy for Intel";
}

TEST(GuestLeaves, SignatureBrandKvmAndAddressSizes) {
  CpuDefinition d = intel({"la57"});
  d.family = 25, d.model_number = 1, d.stepping = 1;
  d.model_id = "AMD EPYC-Milan Processor";
  GuestCpuid g = build(d, "1");
  const CpuidTable& t = g.tables[0];
  EXPECT_EQ(t.get(1).eax, 0x00a00f11u);
  EXPECT_EQ(t.get(0x80000002).eax, 0x20444d41u);  // "AMD "
  EXPECT_EQ(t.get(0x80000004).edx, 0u);
  EXPECT_EQ(t.get(0x80000008).eax, 40u | 57u << 8);
  EXPECT_EQ(t.get(0x40000000).eax, 0x40000001u);
  EXPECT_EQ(t.get(0x40000000).ebx, 0x4b4d564bu);  // "KVMK"
  EXPECT_EQ(t.get(0x40000000).edx, 0x4du);        // "M\0\0\0"
  d.phys_bits = 46;
  EXPECT_EQ(build(d, "1").tables[0].get(0x80000008).eax & 0xff, 46u);
}

TEST(GuestLeaves, DynamicBitsAreLeftToTheGuest) {
  GuestCpuid g = build(intel({"xsave", "pku", "pdcm"}), "1");
  EXPECT_EQ(g.tables[0].get(1).ecx >> 27 & 1, 0u) << "OSXSAVE";
  EXPECT_EQ(g.tables[0].get(7, 0).ecx >> 4 & 1, 0u) << "OSPKE";
  EXPECT_EQ(g.tables[0].get(1).ecx >> 15 & 1, 0u) << "PDCM needs pmu";
  EXPECT_EQ(g.tables[0].get(7, 0).ecx >> 3 & 1, 1u) << "PKU";
}

TEST(GuestLeaves, LevelsRaisedToCoverFeatures) {
  CpuDefinition d = intel({"xsave", "avx", "avx2", "xsaveopt"});
  d.level = 4;
  GuestCpuid g = build(d, "1");
  EXPECT_EQ(g.tables[0].max_basic(), 0xdu);  // 7 for avx2, 0xD for xsaveopt (0xD.1 EAX)
  EXPECT_EQ(g.tables[0].get(7, 0).ebx >> 5 & 1, 1u);
  EXPECT_EQ(g.tables[0].get(7, 0).eax, 0u);
  CpuDefinition b = intel({"avx512-bf16"});
  b.level = 7;
  EXPECT_EQ(build(b, "1").tables[0].get(7, 0).eax, 1u);  // leaf 7 max subleaf for 7.1
  CpuDefinition s = intel({"svm"});
  s.xlevel = 0x80000001;
  EXPECT_EQ(build(s, "1").tables[0].max_extended(), 0x8000000au);
}

// XSAVE sizes against real CPUs: the same components enabled must give the CPU's own numbers.
struct XsaveCase {
  const char* dump;
  std::vector<std::string> features;
  uint32_t xcr0;  // the CPU's 0xD.0 EAX, which these features must enable
};

TEST(Xsave, SizesMatchRealDumps) {
  const std::vector<XsaveCase> cases = {
      {"x86_64-cpuid-Xeon-E5-2650-v3.xml", {"xsave", "avx"}, 0x7},  // Haswell: AVX
      {"x86_64-cpuid-Xeon-Gold-6148.xml", {"xsave", "avx", "avx2", "mpx", "avx512f", "pku"}, 0x2ff},  // Skylake-SP
      {"x86_64-cpuid-Xeon-Gold-6530.xml",  // Emerald Rapids: AVX-512 + AMX, no MPX
       {"xsave", "avx", "avx2", "avx512f", "pku", "xfd", "amx-tile"}, 0x602e7},
      {"x86_64-cpuid-EPYC-7502-32-Core.xml", {"xsave", "avx", "avx2", "pku"}, 0x207},  // Zen 2: PKRU at 0x340
  };
  for (const auto& c : cases) {
    auto host = load_profile(std::string(CPUMODEL_SHARED_DIR) + "/data/cpuid-dumps/" + c.dump);
    ASSERT_TRUE(host) << host.error().message;
    CpuidRegs real = host->cpuid.get(0xd, 0);
    ASSERT_EQ(real.eax, c.xcr0) << c.dump;
    GuestCpuid g = build(intel(c.features), "1", &*host, {.check = false});
    const CpuidTable& t = g.tables[0];
    EXPECT_EQ(t.get(0xd, 0).eax, real.eax) << c.dump;
    EXPECT_EQ(t.get(0xd, 0).ecx, real.ecx) << c.dump << ": size of all enabled components";
    for (unsigned i = 2; i < 19; ++i) {
      if (!(c.xcr0 >> i & 1)) continue;
      EXPECT_EQ(t.get(0xd, i).eax, host->cpuid.get(0xd, i).eax) << c.dump << " component " << i;
      EXPECT_EQ(t.get(0xd, i).ebx, host->cpuid.get(0xd, i).ebx) << c.dump << " component " << i;
      EXPECT_EQ(t.get(0xd, i).ecx, host->cpuid.get(0xd, i).ecx & 6) << c.dump << " component " << i;
    }
  }
}

TEST(Xsave, ArchitecturalDefaultsWithoutHost) {
  // Intel's standard layout (SDM vol. 1, 13.4): the Skylake-SP dump's 0xA88 and Sapphire Rapids'
  // 0x2B00 come out with no host to read offsets from.
  EXPECT_EQ(build(intel({"xsave", "avx", "mpx", "avx512f", "pku"}), "1").tables[0].get(0xd, 0).ecx, 0xa88u);
  EXPECT_EQ(build(intel({"xsave", "avx", "avx512f", "pku", "xfd", "amx-tile"}), "1").tables[0].get(0xd, 0).ecx,
            0x2b00u);
  CpuidTable t = build(intel({"xsave", "avx", "xsaveopt", "xsavec"}), "1").tables[0];
  EXPECT_EQ(t.get(0xd, 0).ebx, 0x340u);
  EXPECT_EQ(t.get(0xd, 1).eax, 3u);
  EXPECT_EQ(t.get(0xd, 1).ebx, 0x340u);  // compacted: 576 + 256
  EXPECT_FALSE(build(intel(), "1").tables[0].has(0xd, 0)) << "no XSAVE, no leaf 0xD";
}

TEST(Filter, DropsWhatTheHostLacksWithQemuWarnings) {
  auto host = load_profile(std::string(CPUMODEL_SHARED_DIR) + "/data/cpuid-dumps/x86_64-cpuid-Core-i5-2500.xml");
  ASSERT_TRUE(host) << host.error().message;  // Sandy Bridge: AVX, no AVX2
  CpuDefinition d = intel({"xsave", "avx", "avx2"});
  GuestCpuid g = build(d, "1", &*host);
  EXPECT_EQ(g.tables[0].get(7, 0).ebx >> 5 & 1, 0u);
  EXPECT_EQ(g.tables[0].get(1).ecx >> 28 & 1, 1u) << "avx kept";
  bool warned = false;
  for (const auto& w : g.warnings) warned |= w == "host doesn't support requested feature: CPUID.07H:EBX.avx2 [bit 5]";
  EXPECT_TRUE(warned);
  EXPECT_TRUE(g.dropped.has("avx2"));
  auto enforced = build_guest_cpuid(d, smp("1"), &*host, {.check = true, .enforce = true});
  ASSERT_FALSE(enforced);
  EXPECT_EQ(enforced.error().exit_code, kExitHost);
  EXPECT_NE(enforced.error().message.find("CPUID.07H:EBX.avx2 [bit 5]"), std::string::npos);
  // Without a host nothing is filtered.
  EXPECT_EQ(build(d, "1").tables[0].get(7, 0).ebx >> 5 & 1, 1u);
}

TEST(Filter, WarnsWhenOneGuestHasMoreVcpusThanTheHost) {
  HostProfile host;
  host.name = "small";
  host.cpuid = build(intel(), "1").tables[0];
  host.topology.online_cpus = 2;
  GuestCpuid g = build(intel(), "4", &host);
  ASSERT_FALSE(g.warnings.empty());
  EXPECT_NE(g.warnings.back().find("4 vCPUs exceed host 'small'"), std::string::npos) << g.warnings.back();
  EXPECT_TRUE(build(intel(), "2", &host).warnings.empty());
}

TEST(Kvm, RoundTripAndFlags) {
  GuestCpuid g = build(amd({"xsave", "avx"}), "8,sockets=2,cores=2,threads=2");
  const CpuidTable& t = g.tables[5];
  std::vector<uint8_t> buf = to_kvm_cpuid2(t);
  ASSERT_EQ(buf.size(), 8 + 40 * t.size());
  uint32_t nent = 0;
  std::memcpy(&nent, buf.data(), 4);
  EXPECT_EQ(nent, t.size());
  EXPECT_EQ(from_kvm_cpuid2(buf.data(), buf.size()), t);
  // Entry layout: function, index, flags, eax, ebx, ecx, edx, padding[3].
  bool saw_indexed = false;
  for (size_t i = 0; i < nent; ++i) {
    uint32_t w[7];
    std::memcpy(w, buf.data() + 8 + 40 * i, sizeof w);
    EXPECT_EQ(w[2], is_indexed_leaf(w[0]) ? 1u : 0u) << std::hex << w[0];
    saw_indexed |= w[0] == 0x8000001d && w[1] == 3;
  }
  EXPECT_TRUE(saw_indexed);
  EXPECT_TRUE(from_kvm_cpuid2(buf.data(), 7).empty());                 // shorter than the header
  EXPECT_EQ(from_kvm_cpuid2(buf.data(), 8 + 40).size(), 1u);           // nent larger than the buffer
}

TEST(Output, JsonHasTheContractFields) {
  GuestCpuid g = build(intel(), "2,cores=2");
  std::string j = guest_cpuid_json(g, "Test-Intel", {0, 1});
  for (const char* k : {"\"vcpus\"", "\"index\"", "\"apic_id\"", "\"socket\"", "\"die\"", "\"core\"", "\"thread\"",
                        "\"leaves\"", "\"leaf\"", "\"subleaf\"", "\"eax\"", "\"ebx\"", "\"ecx\"", "\"edx\""})
    EXPECT_NE(j.find(k), std::string::npos) << k;
  std::string text = describe_guest_cpuid(g.tables[1], g.vcpus[1], g.smp);
  EXPECT_NE(text.find("GenuineIntel"), std::string::npos);
  EXPECT_NE(text.find("APIC ID 1"), std::string::npos);
  EXPECT_NE(text.find("sse2"), std::string::npos);
  EXPECT_NE(kvm_cpuid2_dump(g.tables[0]).find("nent="), std::string::npos);
}

}  // namespace
}  // namespace cpumodel

namespace cpumodel {
namespace {

struct Cli {
  int rc;
  std::string out, err;
};

// Runs the built cpumodel (skips when it is not built: this executable does not depend on it).
Cli run_cli(const std::string& args) {
  std::string err_file = ::testing::TempDir() + "cpuid_cli_err";
  std::string cmd = std::string(CPUMODEL_BINARY) + " " + args + " 2>" + err_file;
  Cli r{-1, "", ""};
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    int st = ::pclose(p);
    r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  if (FILE* f = std::fopen(err_file.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) r.err.append(buf, n);
    std::fclose(f);
  }
  return r;
}

class CpuidCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(CPUMODEL_BINARY, X_OK) != 0) GTEST_SKIP() << CPUMODEL_BINARY << " not built";
  }
};

TEST_F(CpuidCli, CpuidRFormatOfOneVcpu) {
  Cli c = run_cli("cpuid -cpu Haswell-noTSX -smp 8,sockets=2,cores=2,threads=2 --vcpu 5 --format cpuid-r");
  ASSERT_EQ(c.rc, 0) << c.err;
  EXPECT_EQ(c.out.rfind("CPU:\n", 0), 0u);
  // vCPU 5 = socket 1, core 0, thread 1: APIC ID 5 in leaf 1 EBX[31:24] and 0xB EDX.
  EXPECT_NE(c.out.find("   0x00000001 0x00: eax=0x000306c1 ebx=0x05040800"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("   0x0000000b 0x01: eax=0x00000002 ebx=0x00000004 ecx=0x00000201 edx=0x00000005"),
            std::string::npos);
}

TEST_F(CpuidCli, ExitCodesAndMessages) {
  Cli bad_smp = run_cli("cpuid --cpu Haswell --smp 8,sockets=3,cores=2");
  EXPECT_EQ(bad_smp.rc, 2);
  EXPECT_EQ(bad_smp.err.rfind("cpumodel: error: ", 0), 0u) << bad_smp.err;
  std::string host = std::string(CPUMODEL_SHARED_DIR) + "/data/cpuid-dumps/x86_64-cpuid-Core-i5-2500.xml";
  Cli warn = run_cli("cpuid --cpu Haswell --host " + host);
  EXPECT_EQ(warn.rc, 0) << warn.err;
  EXPECT_NE(warn.err.find("cpumodel: warning: host doesn't support requested feature: CPUID.07H:EBX.avx2 [bit 5]"),
            std::string::npos)
      << warn.err;
  Cli enforce = run_cli("cpuid --cpu Haswell --enforce --host " + host);
  EXPECT_EQ(enforce.rc, 3);
  EXPECT_NE(enforce.err.find("cpumodel: error: host "), std::string::npos) << enforce.err;
  Cli vcpu = run_cli("cpuid --cpu Haswell --smp 2 --vcpu 2");
  EXPECT_EQ(vcpu.rc, 2);
}

}  // namespace
}  // namespace cpumodel
