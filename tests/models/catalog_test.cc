// Loading and validating the catalog: every shipped file loads; each broken file is refused with
// an error naming file:line.
#include <gtest/gtest.h>

#include <set>

#include "test_util.h"

namespace cpumodel {
namespace {

using testing::catalog;
using testing::TempDir;

TEST(Catalog, EveryShippedFileLoads) {
  const Catalog& cat = catalog();
  EXPECT_GE(cat.files().size(), 10u);
  size_t versioned = 0;
  for (const auto& e : cat.entries()) {
    versioned += e.version > 0;
    EXPECT_LE(e.definition.model_id.size(), 48u) << e.name;
    EXPECT_EQ(e.definition.model, e.name);
  }
  // QEMU 7.2's 74 versioned models plus the newer upstream ones.
  EXPECT_GE(versioned, 74u + 14u);
}

TEST(Catalog, NamesResolveLikeQemu) {
  const Catalog& cat = catalog();
  ASSERT_NE(cat.find("Haswell"), nullptr);
  EXPECT_EQ(cat.find("Haswell")->name, "Haswell-v1");  // unversioned -> v1 (default_cpu_version)
  EXPECT_EQ(cat.find("Haswell-noTSX-IBRS")->name, "Haswell-v4");
  EXPECT_EQ(cat.find("EPYC-IBPB")->name, "EPYC-v2");
  EXPECT_EQ(cat.find("Cascadelake-Server-noTSX")->name, "Cascadelake-Server-v3");
  EXPECT_EQ(cat.find("x86-64-v3")->name, "x86-64-v3");
  EXPECT_EQ(cat.find("host")->kind, ModelEntry::Kind::kHost);
  EXPECT_EQ(cat.find("Haswel"), nullptr);
  EXPECT_NE(cat.unknown_model_message("Haswel").find("did you mean 'Haswell'"), std::string::npos);
}

TEST(Catalog, NewerUpstreamModelsArePresent) {
  for (const char* n : {"SapphireRapids-v3", "GraniteRapids-v2", "SierraForest-v2", "ClearwaterForest-v1",
                        "EPYC-Genoa-v2", "EPYC-Turin-v1", "YongFeng-v1", "EPYC-Rome-v4", "EPYC-Milan-v2",
                        "EPYC-v4", "Icelake-Server-v7", "x86-64-v4", "base", "max"})
    EXPECT_NE(catalog().find(n), nullptr) << n;
}

TEST(Catalog, InheritanceIsTheParentPlusItsEdits) {
  const Catalog& cat = catalog();
  const ModelEntry* hsw = cat.find("Haswell-v1");
  const ModelEntry* ivb = cat.find("IvyBridge-v1");
  EXPECT_EQ(hsw->parent, "IvyBridge");
  EXPECT_TRUE(ivb->definition.features.is_subset_of(hsw->definition.features));
  EXPECT_TRUE(hsw->definition.features.has("avx2"));
  EXPECT_FALSE(ivb->definition.features.has("avx2"));
  // Versions are cumulative: v4 = v1 + v2 + v3 + v4 props.
  const ModelEntry* v4 = cat.find("Haswell-v4");
  EXPECT_TRUE(v4->definition.features.has("spec-ctrl"));  // from v3
  EXPECT_FALSE(v4->definition.features.has("hle"));       // v2 off, v3 on, v4 off
  EXPECT_EQ(v4->definition.stepping, 1u);
}

TEST(Catalog, SignaturesRecogniseHosts) {
  const Catalog& cat = catalog();
  EXPECT_EQ(cat.recognise("GenuineIntel", 6, 0x3f, 2)->base_name, "Haswell");
  EXPECT_EQ(cat.recognise("GenuineIntel", 6, 0x55, 4)->base_name, "Skylake-Server");
  EXPECT_EQ(cat.recognise("GenuineIntel", 6, 0x55, 7)->base_name, "Cascadelake-Server");
  EXPECT_EQ(cat.recognise("AuthenticAMD", 0x19, 0x11, 1)->base_name, "EPYC-Genoa");
  EXPECT_EQ(cat.recognise("AuthenticAMD", 6, 0x3f, 2), nullptr);
}

// Loads `text` as the only model file next to the shipped catalog (as --models-dir would).
Result<Catalog> load_with(const std::string& text, std::string* file = nullptr) {
  TempDir dir;
  std::string path = dir.write("user.yaml", text);
  if (file) *file = path;
  return Catalog::load({std::string(CPUMODEL_SOURCE_DATA_DIR) + "/models", dir.path()});
}

void expect_error(const std::string& text, const std::string& line, const std::string& what) {
  std::string file;
  auto c = load_with(text, &file);
  ASSERT_FALSE(c.ok()) << "accepted:\n" << text;
  EXPECT_NE(c.error().message.find(file + ":" + line + ":"), std::string::npos) << c.error().message;
  EXPECT_NE(c.error().message.find(what), std::string::npos) << c.error().message;
  EXPECT_EQ(c.error().exit_code, kExitUsage);
}

TEST(CatalogErrors, UserModelDerivedFromShippedOneLoads) {
  auto c = load_with("models:\n  - name: MyHaswell\n    base: Haswell\n    remove: [hle, rtm]\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  const ModelEntry* e = c->find("MyHaswell");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->name, "MyHaswell-v1");
  EXPECT_FALSE(e->definition.features.has("rtm"));
}

TEST(CatalogErrors, UnknownFeatureWithSuggestion) {
  expect_error("models:\n  - name: A\n    base: Haswell\n    add: [avx3]\n", "4", "unknown feature 'avx3' (did you mean");
}

TEST(CatalogErrors, UnknownBase) {
  expect_error("models:\n  - name: A\n    base: Haswel\n", "3", "unknown base model 'Haswel' (did you mean 'Haswell'?)");
}

TEST(CatalogErrors, InheritanceCycle) {
  expect_error("models:\n  - name: A\n    base: B\n  - name: B\n    base: A\n", "2", "inheritance cycle");
}

TEST(CatalogErrors, DuplicateModel) {
  expect_error("models:\n  - name: Haswell\n    base: IvyBridge\n", "2", "duplicate model 'Haswell'");
}

TEST(CatalogErrors, DuplicateAlias) {
  expect_error("models:\n  - name: A\n    base: Haswell\n    versions:\n      - version: 1\n        alias: Haswell-noTSX\n",
               "5", "duplicate model or alias name 'Haswell-noTSX'");
}

TEST(CatalogErrors, BadVersionNumbering) {
  expect_error("models:\n  - name: A\n    base: Haswell\n    versions:\n      - version: 1\n      - version: 3\n", "6",
               "version 3 where 2 was expected");
}

TEST(CatalogErrors, ModelIdTooLong) {
  expect_error("models:\n  - name: A\n    base: Haswell\n    model-id: \"" + std::string(49, 'x') + "\"\n", "4",
               "model-id is 49 characters");
}

TEST(CatalogErrors, VersionPropUnknownFeature) {
  expect_error("models:\n  - name: A\n    base: Haswell\n    versions:\n      - version: 1\n      - version: 2\n"
               "        props:\n          sse4_3: on\n", "8", "unknown feature 'sse4_3'");
}

TEST(CatalogErrors, MissingIdentityWithoutBase) {
  expect_error("models:\n  - name: A\n    features: [fpu]\n", "2", "lacks: vendor, family");
}

TEST(CatalogErrors, BadYamlSyntax) {
  expect_error("models:\n  - name: A\n    features: [fpu\n", "4", "");
}

TEST(CatalogErrors, UnknownKey) {
  expect_error("models:\n  - name: A\n    base: Haswell\n    featurs: [fpu]\n", "4", "unknown model key 'featurs'");
}

TEST(CatalogErrors, UnknownCacheName) {
  expect_error("models:\n  - name: A\n    base: EPYC\n    cache: epyc_rome_cach_info\n", "4",
               "unknown cache info 'epyc_rome_cach_info' (did you mean 'epyc_rome_cache_info'?)");
  expect_error("models:\n  - name: A\n    base: EPYC\n    versions:\n      - version: 1\n      - version: 2\n"
               "        cache: no_such_cache\n",
               "7", "unknown cache info 'no_such_cache'");
}

TEST(CatalogErrors, DuplicateCacheName) {
  expect_error("caches:\n  epyc_cache_info:\n    - {type: data, level: 1, size-kib: 32, line-size: 64, associativity: 8,"
               " sets: 64}\n",
               "2", "duplicate cache info 'epyc_cache_info' (first defined at");
}

TEST(CatalogErrors, CacheSizeMustMatchGeometry) {
  expect_error("caches:\n  mine:\n    - {type: data, level: 1, size-kib: 32, line-size: 64, associativity: 8, sets: 32}\n",
               "3", "cache size 32 KiB");
}

// Named caches resolve to the `caches:` table; the table's numbers are QEMU's CPUCaches
// (target/i386/cpu.c epyc_cache_info: L1i 64 KiB 4-way; L3 8 MiB, complex-indexed, not in
// epyc_v4_cache_info), and a user file can both define a table entry and use it.
TEST(Catalog, NamedCachesResolve) {
  const Catalog& cat = catalog();
  for (const auto& e : cat.entries())
    if (!e.cache_name.empty()) {
      ASSERT_TRUE(e.definition.cache.has_value()) << e.name << " names " << e.cache_name;
      EXPECT_EQ(e.definition.cache->levels.size(), 4u) << e.name;
    }
  const ModelEntry* v1 = cat.find("EPYC-v1");
  const ModelEntry* v4 = cat.find("EPYC-v4");
  const ModelEntry* dhyana = cat.find("Dhyana");
  ASSERT_TRUE(v1 && v4 && dhyana);
  EXPECT_EQ(v1->cache_name, "epyc_cache_info");
  EXPECT_EQ(dhyana->cache_name, "epyc_cache_info");
  EXPECT_EQ(v4->cache_name, "epyc_v4_cache_info");
  const auto& l = v1->definition.cache->levels;
  EXPECT_EQ(l[1].type, CacheLevel::Type::kInstruction);
  EXPECT_EQ(l[1].size_kib, 64u);
  EXPECT_EQ(l[1].associativity, 4u);
  EXPECT_FALSE(l[2].self_init);
  EXPECT_EQ(l[3].size_kib, 8192u);
  EXPECT_TRUE(l[3].complex_indexing);
  EXPECT_FALSE(v4->definition.cache->levels[3].complex_indexing);

  auto c = load_with("caches:\n  tiny:\n    - {type: unified, level: 2, size-kib: 64, line-size: 64, associativity: 4,"
                     " sets: 256}\nmodels:\n  - name: A\n    base: EPYC\n    versions:\n      - version: 1\n"
                     "      - version: 2\n        cache: tiny\n      - version: 3\n"
                     "        cache: {name: inline, levels: [{level: 3, size-kib: 128, associativity: 2, sets: 1024}]}\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->find("A-v1")->cache_name, "epyc_cache_info");
  ASSERT_TRUE(c->find("A-v2")->definition.cache.has_value());
  EXPECT_EQ(c->find("A-v2")->definition.cache->levels.at(0).size_kib, 64u);
  EXPECT_EQ(c->find("A-v3")->cache_name, "inline");
  EXPECT_EQ(c->find("A-v3")->definition.cache->levels.at(0).size_kib, 128u);
}

TEST(CatalogErrors, DataDirEnvironmentOverride) {
  TempDir dir;
  std::filesystem::create_directory(dir.path() + "/models");
  dir.write("models/one.yaml",
            "models:\n  - name: Solo\n    vendor: GenuineIntel\n    family: 6\n    model: 1\n    stepping: 1\n"
            "    level: 1\n    xlevel: 0\n    model-id: solo\n    features: [fpu]\n");
  ::setenv("CPUMODEL_DATA_DIR", dir.path().c_str(), 1);
  auto c = Catalog::load_default();
  ::unsetenv("CPUMODEL_DATA_DIR");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->files().size(), 1u);
}

}  // namespace
}  // namespace cpumodel
