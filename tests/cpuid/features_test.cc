// Dictionary sanity: the table is data, and these properties keep it honest.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "cpumodel/cpuid/features.h"

namespace cpumodel {
namespace {

TEST(Dictionary, NoCoordinateTwice) {
  std::set<std::tuple<int, int>> seen;
  for (const auto& f : feature_table())
    EXPECT_TRUE(seen.insert({static_cast<int>(f.word), f.bit}).second) << f.name << " shares its bit";
}

TEST(Dictionary, NoNameOrAliasTwice) {
  std::map<std::string, std::string> owner;
  auto norm = [](std::string s) {
    for (char& c : s) c = c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  for (const auto& f : feature_table()) {
    std::string spellings = std::string(f.name) + " " + f.aliases;
    size_t pos = 0;
    while (pos < spellings.size()) {
      size_t end = spellings.find(' ', pos);
      if (end == std::string::npos) end = spellings.size();
      if (end > pos) {
        std::string n = norm(spellings.substr(pos, end - pos));
        auto [it, fresh] = owner.emplace(n, f.name);
        EXPECT_TRUE(fresh || it->second == f.name) << n << " names both " << it->second << " and " << f.name;
      }
      pos = end + 1;
    }
  }
}

TEST(Dictionary, EveryAliasAndRequirementResolves) {
  for (FeatureId id = 0; id < feature_count(); ++id) {
    const auto& f = feature(id);
    EXPECT_EQ(find_feature(f.name), id) << f.name;
    std::string req = f.depends;
    size_t pos = 0;
    while (pos < req.size()) {
      size_t end = req.find(' ', pos);
      if (end == std::string::npos) end = req.size();
      if (end > pos) {
        EXPECT_TRUE(find_feature(req.substr(pos, end - pos))) << f.name << " requires unknown " << req;
      }
      pos = end + 1;
    }
  }
}

TEST(Dictionary, ClosureTerminatesAndIsClosed) {
  FeatureSet all = all_features();
  FeatureSet closed = with_requirements(all);
  EXPECT_EQ(closed, all);
  for (FeatureId id = 0; id < feature_count(); ++id) {
    FeatureSet one;
    one.add(id);
    FeatureSet up = with_requirements(one);
    EXPECT_EQ(with_requirements(up), up);
    EXPECT_FALSE(dependents_of(one).has(id)) << feature(id).name << " depends on itself";
  }
}

TEST(Dictionary, MessagesInQemuForm) {
  auto avx2 = find_feature("avx2");
  ASSERT_TRUE(avx2);
  EXPECT_EQ(describe_feature(*avx2), "CPUID.07H:EBX.avx2 [bit 5]");
  EXPECT_EQ(describe_bit(FeatureWord::k7_0Ecx, 31), feature_at(FeatureWord::k7_0Ecx, 31)
                                                          ? describe_bit(FeatureWord::k7_0Ecx, 31)
                                                          : "CPUID.07H:ECX[bit 31]");
  EXPECT_FALSE(migratable_features().has(*find_feature("invtsc")));
}

TEST(Dictionary, RemovingAvxRemovesItsDependents) {
  FeatureSet s;
  for (const char* n : {"xsave", "avx", "avx2", "fxsr", "sse"}) s.add(*find_feature(n));
  FeatureSet no_avx = s;
  no_avx.remove(*find_feature("avx"));
  FeatureSet after = drop_unsatisfied(no_avx);
  EXPECT_FALSE(after.has("avx2"));
  EXPECT_TRUE(after.has("sse"));
  EXPECT_TRUE(dependents_of([] { FeatureSet x; x.add(*find_feature("xsave")); return x; }()).has("avx2"));
}

TEST(Dictionary, TableRoundTrip) {
  CpuidTable t;
  t.set(7, 0, {0, 1u << 5, 0, 0});
  t.set(1, 0, {0, 0, (1u << 28) | (1u << 26), 0});
  FeatureSet f = features_of(t);
  EXPECT_TRUE(f.has("avx2"));
  EXPECT_TRUE(f.has("avx"));
  CpuidTable u;
  apply_features(f, u);
  EXPECT_EQ(features_of(u), f);
}

}  // namespace
}  // namespace cpumodel
