// The compiled catalog (models/src/compiled_catalog.cc): what `cpumodel` loads instead of parsing
// the YAML. It must give exactly what the YAML gives, be used only for the very files it was
// compiled from, and name the files the catalog was loaded from (not the build tree's).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "run_capture.h"
#include "test_util.h"

namespace cpumodel {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// Every field of an entry, written out by hand (independent of the codec under test).
std::string describe(const ModelEntry& e) {
  std::ostringstream o;
  o << e.name << '|' << e.base_name << '|' << e.version << '|' << e.alias << '|' << e.note << '|' << e.deprecated
    << '|' << e.generation << '|' << e.source << '|' << static_cast<int>(e.kind) << '|' << e.vendor_neutral << '|'
    << e.deprecation_note << '|' << e.cache_name << '|' << e.parent << '|' << e.is_default_version << '\n';
  for (const auto& s : e.signatures)
    o << " sig " << s.vendor << ' ' << s.family << ' ' << s.model_min << '-' << s.model_max << ' ' << s.stepping_min
      << '-' << s.stepping_max << '\n';
  for (const auto& p : e.changes) o << " change " << p.key << '=' << p.value << '\n';
  for (const auto& p : e.extra_props) o << " prop " << p.key << '=' << p.value << '\n';
  const CpuDefinition& d = e.definition;
  o << " def " << d.model << '|' << d.vendor << '|' << d.family << '|' << d.model_number << '|' << d.stepping << '|'
    << d.level << '|' << d.xlevel << '|' << d.xlevel2 << '|' << d.model_id << '|' << d.features.bits().to_string()
    << '|' << d.phys_bits.value_or(999) << d.phys_bits.has_value() << '|' << d.host_phys_bits << '|' << d.pmu << '|'
    << d.tsc_khz.value_or(7) << d.tsc_khz.has_value() << '|' << d.arch_capabilities.value_or(7)
    << d.arch_capabilities.has_value() << '\n';
  for (const auto& n : d.notes) o << " note " << n << '\n';
  if (d.cache) {
    for (const auto& c : d.cache->levels)
      o << " cache " << static_cast<int>(c.type) << ' ' << c.level << ' ' << c.size_kib << ' ' << c.line_size << ' '
        << c.associativity << ' ' << c.partitions << ' ' << c.sets << ' ' << c.lines_per_tag << ' ' << c.self_init
        << c.no_invd_sharing << c.inclusive << c.complex_indexing << ' ' << static_cast<int>(c.shared) << '\n';
  } else {
    o << " no cache\n";
  }
  return o.str();
}

std::string describe(const Catalog& c) {
  std::string out;
  for (const auto& e : c.entries()) out += describe(e);
  return out;
}

// The shipped catalog copied to a fresh directory (as an install would put it).
std::string copy_models(const TempDir& dir) {
  std::string to = dir.path() + "/models";
  fs::copy(std::string(CPUMODEL_SOURCE_DATA_DIR) + "/models", to);
  return to;
}

// Registered blobs must outlive every load: kept here for good, at stable addresses.
std::string_view keep_blob(std::string blob) {
  static std::deque<std::string> kept;
  kept.push_back(std::move(blob));
  return kept.back();
}

TEST(CompiledCatalog, GivesExactlyWhatTheYamlGives) {
  TempDir dir;
  std::string models = copy_models(dir);
  // This test binary has no compiled catalog linked in: the first load parses the YAML.
  auto parsed = Catalog::load({models});
  ASSERT_TRUE(parsed) << parsed.error().message;
  ASSERT_FALSE(parsed->from_compiled());
  auto blob = parsed->compile();
  ASSERT_TRUE(blob) << blob.error().message;
  Catalog::register_compiled(keep_blob(*blob));
  auto compiled = Catalog::load({models});
  ASSERT_TRUE(compiled) << compiled.error().message;
  EXPECT_TRUE(compiled->from_compiled());
  EXPECT_EQ(compiled->entries().size(), parsed->entries().size());
  EXPECT_EQ(describe(*compiled), describe(*parsed));
  EXPECT_EQ(compiled->files(), parsed->files());
  // Names resolve the same way (the index is rebuilt, not stored).
  for (const char* n : {"Haswell", "Haswell-noTSX-IBRS", "EPYC-IBPB", "x86-64-v3", "host", "max", "qemu64"}) {
    ASSERT_NE(compiled->find(n), nullptr) << n;
    EXPECT_EQ(compiled->find(n)->name, parsed->find(n)->name) << n;
  }
  auto a = compiled->expand("Haswell,+aes,-avx");
  auto b = parsed->expand("Haswell,+aes,-avx");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->cpu.features, b->cpu.features);
  EXPECT_EQ(a->notes, b->notes);

  // The same files somewhere else: still compiled, and `source` names where they are now.
  TempDir other;
  std::string moved = copy_models(other);
  auto there = Catalog::load({moved});
  ASSERT_TRUE(there);
  EXPECT_TRUE(there->from_compiled());
  const ModelEntry* h = there->find("Haswell");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->source.rfind(moved + "/", 0), 0u) << h->source;
  EXPECT_EQ(h->source.find(models), std::string::npos) << h->source;

  // One byte changed in one file: parsed again, and the change is seen.
  std::string haswell_file = h->source.substr(0, h->source.rfind(':'));
  auto text = read_file(haswell_file);
  ASSERT_TRUE(text);
  std::string edited = *text;
  auto pos = edited.find("Intel Core Processor (Haswell)");
  ASSERT_NE(pos, std::string::npos);
  edited.replace(pos, 30, "Intel Core Processor (HASWELL)");
  std::ofstream(haswell_file, std::ios::trunc) << edited;
  auto changed = Catalog::load({moved});
  ASSERT_TRUE(changed) << changed.error().message;
  EXPECT_FALSE(changed->from_compiled());
  EXPECT_EQ(changed->find("Haswell-v1")->definition.model_id, "Intel Core Processor (HASWELL)");

  // An extra directory (a user's --models-dir) is never in a compiled catalog.
  TempDir extra;
  extra.write("mine.yaml", "models: []\n");
  auto with_extra = Catalog::load({models, extra.path()});
  if (with_extra) {
    EXPECT_FALSE(with_extra->from_compiled());
  }

  // And the switch that turns it off.
  ::setenv("CPUMODEL_COMPILED_CATALOG", "off", 1);
  auto off = Catalog::load({models});
  ::unsetenv("CPUMODEL_COMPILED_CATALOG");
  ASSERT_TRUE(off);
  EXPECT_FALSE(off->from_compiled());
}

// A compiled catalog decodes an entry when find() first returns it, and all of them when
// entries() is first asked; the two give the same entries, from several threads at once, and
// find(), versions_of() and recognise() give the same object for the same entry. A blob whose
// directory or entries are damaged is not used at all (its checksum): the YAML is parsed.
TEST(CompiledCatalog, DecodesEntriesWhenAskedTheSameFromAnyThread) {
  TempDir dir;
  std::string models = copy_models(dir);
  // A file of its own (a comment added), so that only the blobs made here match it.
  std::string first_file = models + "/" + fs::path(*Catalog::load({models})->files().begin()).filename().string();
  std::ofstream(first_file, std::ios::app) << "# lazy decoding test\n";
  auto parsed = Catalog::load({models});
  ASSERT_TRUE(parsed) << parsed.error().message;
  auto blob = parsed->compile();
  ASSERT_TRUE(blob) << blob.error().message;
  std::string entry_byte = *blob;
  entry_byte[entry_byte.size() - 100] ^= 0x20;  // inside the last entries
  for (std::string damaged : {blob->substr(0, blob->size() - 1), entry_byte}) {
    Catalog::register_compiled(keep_blob(damaged));
    auto skipped = Catalog::load({models});
    ASSERT_TRUE(skipped) << skipped.error().message;
    EXPECT_FALSE(skipped->from_compiled());
    EXPECT_EQ(describe(*skipped->find("Haswell")), describe(*parsed->find("Haswell")));
  }
  Catalog::register_compiled(keep_blob(*blob));
  auto lazy = Catalog::load({models});
  ASSERT_TRUE(lazy);
  ASSERT_TRUE(lazy->from_compiled());
  std::vector<std::string> names;
  for (const auto& e : parsed->entries()) {
    names.push_back(e.name);
    if (!e.alias.empty()) names.push_back(e.alias);
  }
  // Before entries(): each found entry is whole, whichever thread finds it first.
  const ModelEntry* haswell = lazy->find("Haswell");
  std::vector<std::string> seen(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (size_t i = t % 2; i < names.size(); i += 2) seen[t] += describe(*lazy->find(names[i]));
    });
  for (auto& t : threads) t.join();
  std::string want_even, want_odd;
  for (size_t i = 0; i < names.size(); ++i) (i % 2 ? want_odd : want_even) += describe(*parsed->find(names[i]));
  EXPECT_TRUE(seen[0] == want_even && seen[2] == want_even);  // (not EXPECT_EQ: megabytes of text)
  EXPECT_TRUE(seen[1] == want_odd && seen[3] == want_odd);
  // entries() while other threads find: every entry, in order, the same as the YAML's.
  std::string all;
  threads.clear();
  threads.emplace_back([&] { all = describe(*lazy); });
  for (size_t t = 0; t < 2; ++t)
    threads.emplace_back([&] {
      for (const auto& n : names) ASSERT_EQ(lazy->find(n)->name, parsed->find(n)->name);
    });
  for (auto& t : threads) t.join();
  EXPECT_TRUE(all == describe(*parsed));
  // The same object for the same entry, before and after entries(); `show` marks the current
  // version by it.
  EXPECT_EQ(lazy->find("Haswell"), haswell);
  EXPECT_EQ(lazy->find(haswell->name), haswell);
  auto versions = lazy->versions_of("Haswell");
  EXPECT_EQ(versions.size(), parsed->versions_of("Haswell").size());
  EXPECT_EQ(std::count(versions.begin(), versions.end(), haswell), 1);
  for (const ModelEntry* v : versions) EXPECT_EQ(lazy->find(v->name), v);
  const ModelEntry* rome = lazy->recognise("AuthenticAMD", 23, 49, 0);
  ASSERT_NE(rome, nullptr);
  EXPECT_EQ(lazy->find(rome->name), rome);
  EXPECT_EQ(rome->name, parsed->recognise("AuthenticAMD", 23, 49, 0)->name);
  // A copy shares the decoded entries.
  Catalog copy = *lazy;
  EXPECT_EQ(copy.find("Haswell"), haswell);
}

// The real binary, which has the build's compiled catalog linked in: same answers either way.
TEST(CompiledCatalog, CliAnswersTheSameWithAndWithoutIt) {
  std::string bin = std::string("CPUMODEL_DATA_DIR=" CPUMODEL_SOURCE_DATA_DIR " ") + CPUMODEL_BINARY;
  std::string off = "CPUMODEL_COMPILED_CATALOG=off " + bin;
  const std::string host = std::string(CPUMODEL_SOURCE_DATA_DIR) + "/hosts/intel/Ice-Lake-Server.yaml";
  for (std::string args : {std::string("list --json"), "list --host " + host, std::string("show EPYC-Rome --json"),
                           std::string("show Haswell-noTSX --json"), std::string("show Haswell"), std::string("expand Cascadelake-Server,-avx512f --json"),
                           "compare Skylake-Server --host " + host + " --json"}) {
    int sa = -1, sb = -1;
    std::string a = testing::run_capture(bin + " " + args + " 2>&1", &sa);
    std::string b = testing::run_capture(off + " " + args + " 2>&1", &sb);
    EXPECT_FALSE(a.empty()) << args;
    EXPECT_LE(sa, 1) << args << "\n" << a;
    EXPECT_EQ(sa, sb) << args;
    EXPECT_EQ(a, b) << args;
  }
}

}  // namespace
}  // namespace cpumodel
