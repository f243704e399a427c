// Baseline logic on hand-made hosts and models: ranking, vendors, non-feature values, invtsc.
// Expectations follow from the ranking rule in baseline.h, not from our own output.
#include "cpumodel/migrate/baseline.h"
#include "test_util.h"

namespace cpumodel {
namespace {

using test::host;
using test::model;
using test::set_of;

// Features without dependencies in the dictionary, so the closure leaves them alone.
FeatureSet A() { return set_of({"fpu", "vme", "de"}); }

Baseline one_result(std::span<const HostSummary> hosts, std::span<const ModelEntry> models,
                    BaselineOptions opt = {}) {
  auto r = compute_baseline(hosts, models, opt);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  if (!r.ok() || r->size() != 1) return {};
  return std::move((*r)[0]);
}

TEST(Baseline, NewestGenerationEveryHostRuns) {
  std::vector<ModelEntry> models = {model("Old", 1, 1, A()), model("Mid", 1, 2, A() | set_of({"pse"})),
                                    model("New", 1, 3, A() | set_of({"pse", "tsc"}))};
  std::vector<HostSummary> hosts = {host("h1", A() | set_of({"pse", "tsc"})), host("h2", A() | set_of({"pse"}))};
  Baseline b = one_result(hosts, models);
  ASSERT_NE(b.model, nullptr);
  EXPECT_EQ(b.model->name, "Mid-v1");
  EXPECT_TRUE(b.added.empty());
  EXPECT_TRUE(b.removed.empty());
  EXPECT_EQ(b.cpu_string(), "Mid-v1");
  // New-v1 ranks higher and is blocked by h2, for tsc.
  ASSERT_FALSE(b.candidates.empty());
  EXPECT_EQ(b.candidates[0].model->name, "New-v1");
  EXPECT_FALSE(b.candidates[0].runnable);
  EXPECT_EQ(b.candidates[0].blocking, set_of({"tsc"}));
  auto lines = explain_baseline(b, hosts);
  bool found = false;
  for (const auto& l : lines) found |= l.find("New-v1: blocked by h2 (tsc)") != std::string::npos;
  EXPECT_TRUE(found) << testing::PrintToString(lines);
  // Every host is IDENTICAL or SUPERSET; h2 has exactly the result.
  ASSERT_EQ(b.verdicts.size(), 2u);
  EXPECT_EQ(b.verdicts[1], HostVerdict::kIdentical);
  EXPECT_EQ(b.verdicts[0], HostVerdict::kSuperset);
}

TEST(Baseline, SharedExtrasBecomePlusF) {
  std::vector<ModelEntry> models = {model("M", 1, 1, A())};
  std::vector<HostSummary> hosts = {host("h1", A() | set_of({"pse", "tsc"})), host("h2", A() | set_of({"pse", "msr"}))};
  Baseline b = one_result(hosts, models);
  ASSERT_NE(b.model, nullptr);
  EXPECT_EQ(b.added, set_of({"pse"}));
  EXPECT_EQ(b.cpu_string(), "M-v1,+pse");
  EXPECT_EQ(b.features, A() | set_of({"pse"}));
  ASSERT_EQ(b.dropped.size(), 2u);  // tsc and msr: some host lacks each
}

TEST(Baseline, SignatureMatchBreaksGenerationTie) {
  ModelEntry client = model("Client", 1, 5, A()), server = model("Server", 1, 5, A());
  server.signatures.push_back(Signature{"GenuineIntel", 6, 0x3f, 0x3f});
  std::vector<ModelEntry> models = {client, server};
  std::vector<HostSummary> hosts = {host("h1", A())};
  Baseline b = one_result(hosts, models);
  ASSERT_NE(b.model, nullptr);
  EXPECT_EQ(b.model->name, "Server-v1");
  // And with the signature on the other model, the other one wins.
  std::swap(models[0].signatures, models[1].signatures);
  Baseline c = one_result(hosts, models);
  ASSERT_NE(c.model, nullptr);
  EXPECT_EQ(c.model->name, "Client-v1");
}

TEST(Baseline, FewestMinusFThenHighestVersion) {
  // QEMU-style versions: v1 has tsc, v2 drops it, v3 = v2 + msr. tsc is version-variable, so a host
  // without tsc may still run v1 or v3 with -tsc; v2 needs no -f and wins on "fewest -f".
  FeatureSet v1 = A() | set_of({"tsc"}), v2 = A(), v3 = A() | set_of({"tsc", "msr"});
  std::vector<ModelEntry> models = {model("M", 1, 4, v1), model("M", 2, 4, v2), model("M", 3, 4, v3)};
  std::vector<HostSummary> hosts = {host("h1", A() | set_of({"msr"})), host("h2", A() | set_of({"msr", "tsc"}))};
  Baseline b = one_result(hosts, models);
  ASSERT_NE(b.model, nullptr);
  EXPECT_EQ(b.model->name, "M-v2");
  EXPECT_EQ(b.cpu_string(), "M-v2,+msr");
  // When both hosts have tsc, v3 (highest version, 0 -f) wins over v1/v2.
  hosts[0].features |= set_of({"tsc"});
  Baseline c = one_result(hosts, models);
  ASSERT_NE(c.model, nullptr);
  EXPECT_EQ(c.model->name, "M-v3");
  EXPECT_TRUE(c.added.empty());
}

TEST(Baseline, VersionVariableFeaturesBecomeMinusF) {
  // v1 lacks msr, v2 has it: msr is version-variable, tsc (in both) is not.
  std::vector<ModelEntry> models = {model("M", 1, 4, A() | set_of({"tsc"})),
                                    model("M", 2, 4, A() | set_of({"tsc", "msr"}))};
  EXPECT_EQ(version_variable_features(models, models[1]), set_of({"msr"}));
  std::vector<ModelEntry> only_v2 = {models[1]};
  only_v2[0].version = 2;
  std::vector<HostSummary> hosts = {host("h1", A() | set_of({"tsc"}))};
  // With only v2 in the catalog, msr is not variable: v2 is blocked and nothing fits.
  Baseline b = one_result(hosts, only_v2);
  EXPECT_EQ(b.model, nullptr);
  EXPECT_EQ(b.cpu_string().rfind("base,", 0), 0u) << b.cpu_string();
}

TEST(Baseline, NoCommonModelStillGivesTheFeatureSet) {
  std::vector<ModelEntry> models = {model("Big", 1, 9, A() | set_of({"pse", "tsc", "msr"}))};
  std::vector<HostSummary> hosts = {host("h1", A() | set_of({"pse"})), host("h2", A() | set_of({"pse", "tsc"}))};
  Baseline b = one_result(hosts, models);
  EXPECT_EQ(b.model, nullptr);
  EXPECT_EQ(b.features, A() | set_of({"pse"}));
  EXPECT_EQ(b.cpu_string(), "base,+de,+fpu,+pse,+vme");
  bool noted = false;
  for (const auto& n : b.notes) noted |= n.find("no catalog model") != std::string::npos;
  EXPECT_TRUE(noted);
}

TEST(Baseline, MixedVendorsAreAnErrorUnlessPerVendor) {
  std::vector<ModelEntry> models = {model("I", 1, 1, A()), model("E", 1, 1, A(), "AuthenticAMD")};
  std::vector<HostSummary> hosts = {host("i1", A()), host("a1", A(), "AuthenticAMD"), host("i2", A())};
  auto r = compute_baseline(hosts, models, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().exit_code, kExitUsage);
  const std::string& m = r.error().message;
  EXPECT_NE(m.find("GenuineIntel (i1, i2)"), std::string::npos) << m;
  EXPECT_NE(m.find("AuthenticAMD (a1)"), std::string::npos) << m;
  EXPECT_NE(m.find("--per-vendor"), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << "one line";
  BaselineOptions opt;
  opt.per_vendor = true;
  auto per = compute_baseline(hosts, models, opt);
  ASSERT_TRUE(per.ok()) << per.error().message;
  ASSERT_EQ(per->size(), 2u);
  EXPECT_EQ((*per)[0].model->name, "I-v1");
  EXPECT_EQ((*per)[1].model->name, "E-v1");
  EXPECT_EQ((*per)[1].hosts, std::vector<size_t>{1});
}

TEST(Baseline, EmptyInputIsAnError) {
  auto r = compute_baseline({}, {}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().exit_code, kExitUsage);
}

TEST(Baseline, OneHostIsItsOwnBaseline) {
  std::vector<ModelEntry> models = {model("M", 1, 1, A())};
  std::vector<HostSummary> hosts = {host("solo", A() | set_of({"pse"}))};
  Baseline b = one_result(hosts, models);
  ASSERT_NE(b.model, nullptr);
  EXPECT_EQ(b.features, hosts[0].features);
  EXPECT_EQ(b.verdicts[0], HostVerdict::kIdentical);
}

TEST(Baseline, NonFeatureValuesAreTheSmallest) {
  std::vector<ModelEntry> models = {model("M", 1, 1, A())};
  HostSummary h1 = host("h1", A()), h2 = host("h2", A());
  h1.phys_bits = 46;
  h2.phys_bits = 39;
  h1.xcr0 = 0xe7;  // x87 sse avx opmask zmm_hi256 hi16_zmm
  h1.xsave_end[5] = 0x440 + 0x40;
  h1.xsave_end[6] = 0x480 + 0x200;
  h1.xsave_end[7] = 0x680 + 0x400;
  h1.xsave_size = 0xa80;
  h2.xcr0 = 0x7;
  h2.xsave_size = 0x340;
  h2.xsave_end[2] = 0x340;
  h1.xsave_end[2] = 0x340;
  h2.level = 0xb;
  h1.xlevel = 0x80000001;
  std::vector<HostSummary> hosts = {h1, h2};
  Baseline b = one_result(hosts, models);
  EXPECT_EQ(b.phys_bits, 39u);
  EXPECT_EQ(b.xcr0, 0x7u);
  EXPECT_EQ(b.xsave_size, 0x340u);  // 512 legacy + 64 header + 256 AVX
  EXPECT_EQ(b.level, 0xbu);
  EXPECT_EQ(b.xlevel, 0x80000001u);
}

TEST(Baseline, InvtscNeedsPinnedFrequencyWithin250Ppm) {
  std::vector<ModelEntry> models = {model("M", 1, 1, A())};
  FeatureSet f = A() | set_of({"invtsc"});
  std::vector<HostSummary> hosts = {host("h1", f), host("h2", f)};
  hosts[0].tsc_khz = 2'100'000;
  hosts[1].tsc_khz = 2'100'400;  // 190 ppm apart
  BaselineOptions opt;
  // Not pinned: dropped, with a note.
  Baseline b = one_result(hosts, models, opt);
  EXPECT_FALSE(b.invtsc);
  EXPECT_FALSE(b.features.has("invtsc"));
  bool noted = false;
  for (const auto& n : b.notes) noted |= n.find("invtsc dropped") != std::string::npos && n.find("--tsc-khz") != std::string::npos;
  EXPECT_TRUE(noted) << testing::PrintToString(b.notes);
  // Pinned: kept.
  opt.tsc_khz = 2'100'000;
  Baseline c = one_result(hosts, models, opt);
  EXPECT_TRUE(c.invtsc);
  EXPECT_TRUE(c.features.has("invtsc"));
  EXPECT_EQ(c.cpu_string(), "M-v1,+invtsc");
  // 300 ppm apart: dropped even when pinned.
  hosts[1].tsc_khz = 2'100'630;
  Baseline d = one_result(hosts, models, opt);
  EXPECT_FALSE(d.invtsc);
  // A host without a known frequency: dropped.
  hosts[1].tsc_khz.reset();
  EXPECT_FALSE(one_result(hosts, models, opt).invtsc);
}

TEST(Baseline, ModelsNonMigratableFeatureFollowsTheTscRule) {
  // invtsc is the dictionary's non-migratable feature. A model that has it still runs when the
  // TSC rule drops it (it becomes -invtsc), and keeps it when the rule is met.
  std::vector<ModelEntry> models = {model("M", 1, 1, A() | set_of({"invtsc"}))};
  FeatureSet f = A() | set_of({"invtsc"});
  std::vector<HostSummary> hosts = {host("h1", f), host("h2", f)};
  hosts[0].tsc_khz = hosts[1].tsc_khz = 2'000'000;
  for (bool migratable : {false, true}) {
    BaselineOptions opt;
    opt.migratable = migratable;
    Baseline dropped = one_result(hosts, models, opt);
    ASSERT_NE(dropped.model, nullptr);
    EXPECT_EQ(dropped.cpu_string(), "M-v1,-invtsc");
    EXPECT_TRUE(dropped.common.has("invtsc")) << "the intersection itself keeps it";
    opt.tsc_khz = 2'000'000;
    Baseline kept = one_result(hosts, models, opt);
    EXPECT_EQ(kept.cpu_string(), "M-v1");
  }
}

TEST(Baseline, IntersectionIsTheAndOfEveryHost) {
  std::vector<HostSummary> hosts = {host("h1", A() | set_of({"pse", "tsc"})), host("h2", A() | set_of({"tsc"})),
                                    host("h3", A() | set_of({"tsc", "msr"}))};
  EXPECT_EQ(intersect_features(hosts), A() | set_of({"tsc"}));
  EXPECT_TRUE(intersect_features({}).empty());
}

TEST(Baseline, AddHostDescribesTheCost) {
  std::vector<ModelEntry> models = {model("Old", 1, 1, A()), model("New", 1, 2, A() | set_of({"tsc"}))};
  std::vector<HostSummary> two = {host("h1", A() | set_of({"tsc"})), host("h2", A() | set_of({"tsc"}))};
  std::vector<HostSummary> three = two;
  three.push_back(host("h3", A()));
  three[2].phys_bits = 39;
  Baseline before = one_result(two, models), after = one_result(three, models);
  auto lines = describe_cost(before, after);
  std::string all;
  for (const auto& l : lines) all += l + "\n";
  EXPECT_NE(all.find("features lost: tsc"), std::string::npos) << all;
  EXPECT_NE(all.find("model: New-v1 -> Old-v1"), std::string::npos) << all;
  EXPECT_NE(all.find("phys-bits 46 -> 39"), std::string::npos) << all;
}

}  // namespace
}  // namespace cpumodel
