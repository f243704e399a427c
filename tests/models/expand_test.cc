// Expansion: QEMU's edit precedence, the dependency closure, properties, accelerator defaults.
// Expected values come from QEMU's documented behaviour (target/i386/cpu.c comments quoted) and
// Linux arch/x86/kernel/cpu/cpuid-deps.c for the closure, not from our own output.
#include <gtest/gtest.h>

#include "test_util.h"

namespace cpumodel {
namespace {

using testing::catalog;

Expansion expand_ok(const std::string& spec, Accelerator accel = Accelerator::kKvm) {
  Catalog cat = catalog();  // copy: the accelerator is a per-catalog setting
  cat.set_accelerator(accel);
  auto x = cat.expand(spec);
  EXPECT_TRUE(x.ok()) << spec << ": " << (x.ok() ? "" : x.error().message);
  return x.ok() ? *x : Expansion{};
}

TEST(Expand, MinusAvxAlsoRemovesWhatNeedsAvx) {
  // cpuid-deps.c: FMA, F16C, AVX2 (and the AVX-512 family via AVX2) depend on AVX.
  Expansion x = expand_ok("Haswell-noTSX,-avx");
  for (const char* f : {"avx", "avx2", "fma", "f16c"}) EXPECT_FALSE(x.cpu.features.has(f)) << f;
  for (const char* f : {"avx2", "fma", "f16c"}) EXPECT_TRUE(x.removed_by_closure.has(f)) << f;
  ASSERT_FALSE(x.notes.empty());
  EXPECT_NE(x.notes.front().find("-avx also removes avx2, f16c, fma (they need avx)"), std::string::npos)
      << x.notes.front();
  EXPECT_TRUE(x.requested_off.has("avx"));
}

TEST(Expand, MinusAvx512fTakesTheAvx512Family) {
  Expansion x = expand_ok("Skylake-Server,-avx512f");
  for (const char* f : {"avx512f", "avx512dq", "avx512bw", "avx512cd", "avx512vl"}) EXPECT_FALSE(x.cpu.features.has(f)) << f;
}

TEST(Expand, PlusWinsOverPropertyFormAndWarns) {
  // cpu.c: "Compatibility hack to maintain legacy +-feat semantic, where +-feat overwrites any
  // feature set by feat=on|feat even if the later is parsed after +-feat".
  Expansion on = expand_ok("Conroe,x2apic=off,+x2apic");
  EXPECT_TRUE(on.cpu.features.has("x2apic"));
  ASSERT_FALSE(on.warnings.empty());
  EXPECT_NE(on.warnings.front().find("ambiguous"), std::string::npos);
  Expansion off = expand_ok("Conroe,-x2apic,x2apic=on");  // "-x2apic,x2apic=on will result in x2apic disabled"
  EXPECT_FALSE(off.cpu.features.has("x2apic"));
}

TEST(Expand, FeatureAliasesAreOneFeature) {
  Expansion a = expand_ok("Nehalem,-sse4_2");
  Expansion b = expand_ok("Nehalem,-sse4-2");
  Expansion c = expand_ok("Nehalem,-sse4.2");
  EXPECT_FALSE(a.cpu.features.has("sse4.2"));
  EXPECT_EQ(a.cpu.features, b.cpu.features);
  EXPECT_EQ(a.cpu.features, c.cpu.features);
  EXPECT_TRUE(expand_ok("Nehalem").cpu.features.has("sse4.2"));
}

TEST(Expand, UnknownFeatureNamesItsColumn) {
  auto x = catalog().expand("Haswell,+avx3");
  ASSERT_FALSE(x.ok());
  EXPECT_NE(x.error().message.find("column 9"), std::string::npos) << x.error().message;
  EXPECT_NE(x.error().message.find("did you mean"), std::string::npos) << x.error().message;
}

TEST(Expand, UnknownModelSuggests) {
  auto x = catalog().expand("Skylake-Sever");
  ASSERT_FALSE(x.ok());
  EXPECT_NE(x.error().message.find("did you mean 'Skylake-Server'"), std::string::npos) << x.error().message;
}

TEST(Expand, PropertiesOverrideTheModel) {
  Expansion x = expand_ok("Haswell,model-id=My CPU,family=6,model=63,stepping=2,level=20,phys-bits=46,tsc-frequency=2.5G");
  EXPECT_EQ(x.cpu.model_id, "My CPU");
  EXPECT_EQ(x.cpu.model_number, 63u);
  EXPECT_EQ(x.cpu.stepping, 2u);
  EXPECT_EQ(x.cpu.level, 20u);
  EXPECT_EQ(x.cpu.phys_bits, 46u);
  auto bad = catalog().expand("Haswell,stepping=16");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("stepping"), std::string::npos);
}

TEST(Expand, PlusAddsRequirements) {
  Expansion x = expand_ok("x86-64-v1,+avx2");
  EXPECT_TRUE(x.cpu.features.has("avx"));
  EXPECT_TRUE(x.added_by_closure.has("avx"));
}

TEST(Expand, AbiLevelsAreCumulativeAndEditable) {
  Expansion v3 = expand_ok("x86-64-v3,+aes");
  EXPECT_TRUE(v3.cpu.features.has("aes"));
  EXPECT_TRUE(v3.cpu.features.has("avx2"));
  EXPECT_TRUE(expand_ok("x86-64-v2").cpu.features.is_subset_of(expand_ok("x86-64-v3").cpu.features));
  EXPECT_FALSE(expand_ok("x86-64-v3").cpu.features.has("avx512f"));
  EXPECT_TRUE(expand_ok("x86-64-v4").cpu.features.has("avx512vl"));
}

TEST(Expand, AcceleratorDefaultsFollowQemu) {
  // kvm_default_props: svm off (and with it the SVM leaf), monitor off, x2apic on.
  Expansion kvm = expand_ok("EPYC");
  EXPECT_FALSE(kvm.cpu.features.has("svm"));
  EXPECT_FALSE(kvm.cpu.features.has("npt"));
  EXPECT_TRUE(kvm.cpu.features.has("x2apic"));
  EXPECT_TRUE(expand_ok("EPYC,+svm").cpu.features.has("svm"));
  // tcg_default_props: vme off.
  EXPECT_FALSE(expand_ok("EPYC", Accelerator::kTcg).cpu.features.has("vme"));
  EXPECT_TRUE(expand_ok("EPYC", Accelerator::kNone).cpu.features.has("vme"));
}

TEST(Expand, HostNeedsAProfile) {
  auto x = catalog().expand("host");
  ASSERT_FALSE(x.ok());
  EXPECT_NE(x.error().message.find("--host"), std::string::npos);
}

HostProfile small_host() {
  HostProfile h;
  h.name = "handmade";
  // "GenuineIntel", family 6 model 0x3f stepping 2 (a Haswell-EP), SSE2 + AVX + invtsc.
  h.cpuid.set(0, 0, {0xd, 0x756e6547, 0x6c65746e, 0x49656e69});
  h.cpuid.set(1, 0, {0x000306f2, 0, (1u << 28) | (1u << 26), (1u << 26) | (1u << 25) | (1u << 24) | 1u});
  h.cpuid.set(0x80000000, 0, {0x80000008, 0, 0, 0});
  h.cpuid.set(0x80000007, 0, {0, 0, 0, 1u << 8});
  return h;
}

TEST(Expand, HostAndMaxComeFromTheProfile) {
  HostProfile h = small_host();
  auto host = catalog().expand("host", &h);
  ASSERT_TRUE(host.ok()) << host.error().message;
  EXPECT_EQ(host->cpu.vendor, "GenuineIntel");
  EXPECT_EQ(host->cpu.model_number, 0x3fu);
  EXPECT_TRUE(host->cpu.features.has("avx"));
  EXPECT_FALSE(host->cpu.features.has("invtsc"));  // not migratable: filtered by default
  auto max = catalog().expand("max", &h);
  ASSERT_TRUE(max.ok());
  EXPECT_TRUE(max->cpu.features.has("invtsc"));
  EXPECT_TRUE(catalog().expand("host,migratable=off", &h)->cpu.features.has("invtsc"));
}

TEST(Expand, CheckFiltersToTheHost) {
  HostProfile h = small_host();
  auto x = catalog().expand("Haswell", &h, true);
  ASSERT_TRUE(x.ok());
  EXPECT_TRUE(x->filtered_by_host.has("avx2"));
  EXPECT_FALSE(x->cpu.features.has("avx2"));
  EXPECT_TRUE(x->cpu.features.has("avx"));
}

}  // namespace
}  // namespace cpumodel
