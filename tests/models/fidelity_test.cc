// THE fidelity test: for every versioned model QEMU 7.2 knows, our expansion equals QEMU's
// query-cpu-model-expansion (type static), under TCG and under KVM, field by field. The truth is
// tests/models/golden/qemu72-expansions{,-kvm}.yaml (written by tools/qemu_expand.py from QEMU
// 7.2); every remaining difference must be listed, with its reason, in
// tests/models/golden/qemu72-differences.md, and every listed difference must still occur.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "test_util.h"

namespace cpumodel {
namespace {

using testing::catalog;

const std::string kGolden = CPUMODEL_MODELS_GOLDEN_DIR;

struct Golden {
  std::string vendor, model_id, description;
  uint64_t family, model, stepping, level, xlevel;
  std::set<std::string> features, aliases;
  bool deprecated;
};

std::map<std::string, Golden> load_golden(const std::string& file) {
  std::map<std::string, Golden> out;
  YAML::Node root = YAML::LoadFile(kGolden + "/" + file);
  for (const auto& kv : root["models"]) {
    const YAML::Node& m = kv.second;
    Golden g;
    g.vendor = m["vendor"].as<std::string>();
    g.model_id = m["model-id"].as<std::string>();
    g.description = m["description"].as<std::string>();
    g.family = m["family"].as<uint64_t>();
    g.model = m["model"].as<uint64_t>();
    g.stepping = m["stepping"].as<uint64_t>();
    g.level = m["level"].as<uint64_t>();
    g.xlevel = m["xlevel"].as<uint64_t>();
    for (const auto& f : m["features"]) g.features.insert(f.as<std::string>());
    for (const auto& a : m["aliases"]) g.aliases.insert(a.as<std::string>());
    g.deprecated = m["deprecated"].as<bool>();
    out[kv.first.as<std::string>()] = g;
  }
  return out;
}

// A listed difference: "| model | accel | item |  reason |", model may be '*'.
struct Listed {
  std::string model, accel, item;
  mutable bool used = false;
};

std::vector<Listed> load_listed() {
  std::ifstream in(kGolden + "/qemu72-differences.md");
  std::vector<Listed> out;
  std::string line;
  std::regex row(R"(^\|\s*`?([^`|]+?)`?\s*\|\s*(tcg|kvm|both)\s*\|\s*`([^`]+)`\s*\|.*\|\s*$)");
  std::smatch m;
  while (std::getline(in, line))
    if (std::regex_match(line, m, row)) out.push_back({m[1], m[2], m[3]});
  return out;
}

// Differences for one model: "vendor", "level", "+feat" (we have it, QEMU not), "-feat".
std::vector<std::string> differences(const Golden& g, const Expansion& x) {
  std::vector<std::string> d;
  const CpuDefinition& c = x.cpu;
  auto num = [&](const char* what, uint64_t q, uint64_t ours) {
    if (q != ours) d.push_back(std::string(what) + "=" + std::to_string(ours) + " (qemu " + std::to_string(q) + ")");
  };
  if (g.vendor != c.vendor) d.push_back("vendor=" + c.vendor + " (qemu " + g.vendor + ")");
  num("family", g.family, c.family);
  num("model", g.model, c.model_number);
  num("stepping", g.stepping, c.stepping);
  num("level", g.level, c.level);
  num("xlevel", g.xlevel, c.xlevel);
  if (g.model_id != c.model_id) d.push_back("model-id='" + c.model_id + "' (qemu '" + g.model_id + "')");
  std::set<std::string> ours;
  for (const auto& n : c.features.names()) ours.insert(n);
  for (const auto& f : ours)
    if (!g.features.count(f)) d.push_back("+" + f);
  for (const auto& f : g.features)
    if (!ours.count(f)) d.push_back("-" + f);
  return d;
}

bool listed(const std::vector<Listed>& list, const std::string& model, const std::string& accel, const std::string& item) {
  std::string key = item.substr(0, item.find(' '));
  if (key.find('=') != std::string::npos) key = key.substr(0, key.find('='));
  for (const auto& l : list)
    if ((l.model == "*" || l.model == model) && (l.accel == accel || l.accel == "both") && l.item == key) {
      l.used = true;
      return true;
    }
  return false;
}

void check_against(const std::string& file, Accelerator accel, const std::string& accel_name) {
  auto golden = load_golden(file);
  ASSERT_EQ(golden.size(), 74u) << "QEMU 7.2 has 74 versioned x86 models";
  auto list = load_listed();
  ASSERT_FALSE(list.empty()) << "could not read qemu72-differences.md";
  Catalog cat = catalog();
  cat.set_accelerator(accel);
  std::vector<std::string> unlisted;
  for (const auto& [name, g] : golden) {
    auto x = cat.expand(name);
    if (!x) {
      unlisted.push_back(name + ": " + x.error().message);
      continue;
    }
    EXPECT_EQ(x->cpu.model, name);
    for (const auto& d : differences(g, *x))
      if (!listed(list, name, accel_name, d)) unlisted.push_back(name + " [" + accel_name + "] " + d);
  }
  std::string all;
  for (const auto& u : unlisted) all += "\n  " + u;
  EXPECT_TRUE(unlisted.empty()) << unlisted.size() << " difference(s) not in qemu72-differences.md:" << all;
  for (const auto& l : list)
    if ((l.accel == accel_name) && !l.used)
      ADD_FAILURE() << "qemu72-differences.md lists '" << l.model << " " << l.accel << " " << l.item
                    << "' but it no longer occurs: remove it";
}

TEST(Fidelity, EveryQemu72ModelMatchesUnderTcg) {
  check_against("qemu72-expansions.yaml", Accelerator::kTcg, "tcg");
}

TEST(Fidelity, EveryQemu72ModelMatchesUnderKvm) {
  check_against("qemu72-expansions-kvm.yaml", Accelerator::kKvm, "kvm");
}

TEST(Fidelity, NamesAliasesNotesAndDeprecationMatchQemu72) {
  auto golden = load_golden("qemu72-expansions.yaml");
  const Catalog& cat = catalog();
  for (const auto& [name, g] : golden) {
    const ModelEntry* e = cat.find(name);
    ASSERT_NE(e, nullptr) << name;
    std::set<std::string> ours;
    if (e->is_default_version) ours.insert(e->base_name);  // `-machine none`: unversioned -> v1
    if (!e->alias.empty()) ours.insert(e->alias);
    EXPECT_EQ(ours, g.aliases) << name;
    EXPECT_EQ(e->deprecated, g.deprecated) << name;
    std::string desc = e->definition.model_id + (e->note.empty() ? "" : " [" + e->note + "]");
    EXPECT_EQ(desc, g.description) << name << ": `-cpu help` line";
  }
}

// Re-runs QEMU 7.2 when it is installed and checks the TCG golden file is still what it says.
TEST(Fidelity, GoldenIsStillWhatQemuSays) {
  if (std::system("command -v qemu-system-x86_64 >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "qemu-system-x86_64 or python3 not installed";
  FILE* p = ::popen("qemu-system-x86_64 --version", "r");
  char buf[256] = {};
  if (p) {
    if (!std::fgets(buf, sizeof buf, p)) buf[0] = 0;
    ::pclose(p);
  }
  if (std::string(buf).find("version 7.2") == std::string::npos) GTEST_SKIP() << "installed QEMU is not 7.2: " << buf;
  std::string cmd = "python3 " CPUMODEL_TOOLS_DIR "/qemu_expand.py --check " + kGolden + "/qemu72-expansions.yaml 2>&1";
  FILE* run = ::popen(cmd.c_str(), "r");
  ASSERT_NE(run, nullptr);
  std::string out;
  while (std::fgets(buf, sizeof buf, run)) out += buf;
  int rc = ::pclose(run);
  EXPECT_EQ(rc, 0) << out;
}

}  // namespace
}  // namespace cpumodel
