// Dictionary sanity: the table is data, and these properties keep it honest.
#include "cpumodel/cpuid/features.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace cpumodel {
namespace {

TEST(Dictionary, NoCoordinateTwice) {
  std::set<std::tuple<int, int>> seen;
  for (const auto& f : feature_table())
    EXPECT_TRUE(seen.insert({static_cast<int>(f.word), f.bit}).second)
        << f.name << " shares its bit";
}

TEST(Dictionary, NoNameOrAliasTwice) {
  std::map<std::string, std::string> owner;
  auto norm = [](std::string s) {
    for (char& c : s)
      c = c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
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
        EXPECT_TRUE(fresh || it->second == f.name)
            << n << " names both " << it->second << " and " << f.name;
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
        EXPECT_TRUE(find_feature(req.substr(pos, end - pos)))
            << f.name << " requires unknown " << req;
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
  FeatureSet xsave;
  xsave.add(*find_feature("xsave"));
  EXPECT_TRUE(dependents_of(xsave).has("avx2"));
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

// Golden coordinates. Truth: Intel SDM Vol. 2A, CPUID instruction (Tables 3-8 "Feature
// Information", 3-10/3-11 leaf 07H, leaf 0DH, leaf 06H, leaf 80000001H/80000007H) and Vol. 4
// (IA32_ARCH_CAPABILITIES 10AH, IA32_CORE_CAPABILITIES CFH, IA32_PERF_CAPABILITIES 345H); AMD APM
// Vol. 3 Appendix E (CPUID Fn8000_0001 ECX/EDX, Fn8000_0007 EDX, Fn8000_000A EDX, Fn8000_0008 EBX).
struct Golden {
  const char* name;
  bool msr;
  uint32_t leaf_or_msr;
  uint32_t subleaf;
  Reg reg;       // ignored for MSRs
  unsigned bit;  // for MSRs: 0..63
};

TEST(Dictionary, GoldenCoordinatesFromSdmAndApm) {
  const Golden golden[] = {
      {"sse4.2", false, 0x1, 0, Reg::kEcx, 20},
      {"tsc-deadline", false, 0x1, 0, Reg::kEcx, 24},
      {"hypervisor", false, 0x1, 0, Reg::kEcx, 31},
      {"sse2", false, 0x1, 0, Reg::kEdx, 26},
      {"arat", false, 0x6, 0, Reg::kEax, 2},
      {"avx2", false, 0x7, 0, Reg::kEbx, 5},
      {"avx512f", false, 0x7, 0, Reg::kEbx, 16},
      {"pku", false, 0x7, 0, Reg::kEcx, 3},
      {"md-clear", false, 0x7, 0, Reg::kEdx, 10},
      {"avx-vnni", false, 0x7, 1, Reg::kEax, 4},
      {"xsaves", false, 0xd, 1, Reg::kEax, 3},
      {"lahf-lm", false, 0x80000001, 0, Reg::kEcx, 0},
      {"svm", false, 0x80000001, 0, Reg::kEcx, 2},
      {"nx", false, 0x80000001, 0, Reg::kEdx, 20},
      {"lm", false, 0x80000001, 0, Reg::kEdx, 29},
      {"invtsc", false, 0x80000007, 0, Reg::kEdx, 8},
      {"npt", false, 0x8000000a, 0, Reg::kEdx, 0},
      {"wbnoinvd", false, 0x80000008, 0, Reg::kEbx, 9},
      {"rdctl-no", true, 0x10a, 0, Reg::kEax, 0},
      {"taa-no", true, 0x10a, 0, Reg::kEax, 8},
      {"its-no", true, 0x10a, 0, Reg::kEax, 62},
      {"split-lock-detect", true, 0xcf, 0, Reg::kEax, 5},
      {"full-width-write", true, 0x345, 0, Reg::kEax, 13},
  };
  for (const Golden& g : golden) {
    auto id = find_feature(g.name);
    ASSERT_TRUE(id) << g.name;
    const FeatureInfo& f = feature(*id);
    const FeatureWordInfo& w = word_info(f.word);
    EXPECT_EQ(w.is_msr, g.msr) << g.name;
    EXPECT_EQ(w.leaf_or_msr, g.leaf_or_msr) << g.name;
    if (g.msr) {
      EXPECT_EQ(f.bit + (w.reg == Reg::kEdx ? 32u : 0u), g.bit) << g.name;
    } else {
      EXPECT_EQ(w.subleaf, g.subleaf) << g.name;
      EXPECT_EQ(w.reg, g.reg) << g.name;
      EXPECT_EQ(f.bit, g.bit) << g.name;
    }
  }
  EXPECT_EQ(describe_feature(*find_feature("its-no")), "MSR(10AH).its-no [bit 62]");
  EXPECT_EQ(describe_feature(*find_feature("rdctl-no")), "MSR(10AH).rdctl-no [bit 0]");
}

TEST(Dictionary, AliasesResolve) {
  const std::pair<const char*, const char*> aliases[] = {
      {"sse4_2", "sse4.2"},
      {"sse4-2", "sse4.2"},
      {"SSE4.2", "sse4.2"},
      {"sse4_1", "sse4.1"},
      {"tsc_deadline_timer", "tsc-deadline"},
      {"pclmuldq", "pclmulqdq"},
      {"sse3", "pni"},
      {"lahf_lm", "lahf-lm"},
      {"xd", "nx"},
      {"i64", "lm"},
      {"ffxsr", "fxsr-opt"},
      {"fxsr_opt", "fxsr-opt"},
      {"cr8_legacy", "cr8legacy"},
      {"ds_cpl", "ds-cpl"},
      {"avx512_vnni", "avx512vnni"},
      {"tsxldtrk", "tsx-ldtrk"},
      {"kvm_pv_eoi", "kvm-pv-eoi"},
      {"dts", "ds"},
      {"rng", "xstore"},
  };
  for (auto [alias, canonical] : aliases) {
    auto a = find_feature(alias);
    auto c = find_feature(canonical);
    ASSERT_TRUE(a) << alias;
    ASSERT_TRUE(c) << canonical;
    EXPECT_EQ(*a, *c) << alias << " should name " << canonical;
    EXPECT_STREQ(feature(*c).name, canonical);
  }
  // Linux's synthetic constant_tsc is not the CPUID invtsc bit.
  EXPECT_FALSE(find_feature("constant_tsc"));
}

TEST(Dictionary, RemovingAvxRemovesTheAvxFamily) {
  FeatureSet all = all_features();
  FeatureSet no_avx = all;
  no_avx.remove(*find_feature("avx"));
  FeatureSet after = drop_unsatisfied(no_avx);
  for (const char* gone : {"avx2", "fma", "f16c", "vaes", "vpclmulqdq", "avx-vnni", "fma4", "xop"})
    EXPECT_FALSE(after.has(gone)) << gone;
  size_t avx512 = 0;
  for (FeatureId id = 0; id < feature_count(); ++id) {
    std::string n = feature(id).name;
    if (n.rfind("avx512", 0) == 0) {
      ++avx512;
      EXPECT_FALSE(after.has(id)) << n;
    }
  }
  EXPECT_GE(avx512, 18u);  // QEMU names 18 avx512* bits
  for (const char* kept : {"sse4.2", "xsave", "xsaves", "aes", "pclmulqdq", "lm", "invtsc"})
    EXPECT_TRUE(after.has(kept)) << kept;
  FeatureSet avx;
  avx.add(*find_feature("avx"));
  EXPECT_EQ(all - dependents_of(avx) - avx, after);
}

TEST(Dictionary, AmxAndXsaveChains) {
  FeatureSet amx;
  amx.add(*find_feature("amx-int8"));
  FeatureSet up = with_requirements(amx);
  for (const char* need : {"amx-tile", "xfd", "xsaves", "xsave", "fxsr"})
    EXPECT_TRUE(up.has(need)) << need;
  FeatureSet ss;
  ss.add(*find_feature("sse4.2"));
  FeatureSet ss_up = with_requirements(ss);
  for (const char* need : {"sse4.1", "ssse3", "pni", "sse2", "sse", "fxsr"})
    EXPECT_TRUE(ss_up.has(need)) << need;
}

// ---- Differential checks against the installed QEMU (the reference is QEMU 7.2) ----

std::optional<std::string> run(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return std::nullopt;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  if (pclose(p) != 0) return std::nullopt;
  return out;
}

bool have_qemu() { return run("command -v qemu-system-x86_64 >/dev/null 2>&1").has_value(); }

// The flags QEMU lists after "Recognized CPUID flags:", without the vmx-* ones (out of scope).
std::vector<std::string> qemu_flags() {
  std::vector<std::string> flags;
  auto out = run("qemu-system-x86_64 -cpu help 2>/dev/null");
  if (!out) return flags;
  size_t at = out->find("Recognized CPUID flags:");
  if (at == std::string::npos) return flags;
  std::istringstream in(out->substr(at + 23));
  for (std::string w; in >> w;)
    if (w.rfind("vmx-", 0) != 0) flags.push_back(w);
  return flags;
}

TEST(QemuDifferential, EveryQemuFlagIsKnownUnderItsCanonicalName) {
  if (!have_qemu()) GTEST_SKIP() << "qemu-system-x86_64 is not installed";
  auto flags = qemu_flags();
  ASSERT_GT(flags.size(), 150u) << "could not parse `qemu-system-x86_64 -cpu help`";
  for (const std::string& flag : flags) {
    auto id = find_feature(flag);
    EXPECT_TRUE(id) << "QEMU flag '" << flag << "' is not in the dictionary";
    if (id) {
      EXPECT_EQ(std::string(feature(*id).name), flag) << "QEMU's spelling should be canonical";
    }
  }
}

// Every versioned QEMU CPU model's static expansion, restricted to CPUID flags, already satisfies
// the dictionary's dependencies: the dependencies are not stricter than the real CPUs QEMU models.
TEST(QemuDifferential, QemuModelsSatisfyDependencies) {
  if (!have_qemu()) GTEST_SKIP() << "qemu-system-x86_64 is not installed";
  auto flags_v = qemu_flags();
  std::set<std::string> flags(flags_v.begin(), flags_v.end());
  const std::string qemu =
      "timeout 60 qemu-system-x86_64 -machine none -accel tcg -nodefaults -nographic -qmp stdio "
      "2>/dev/null";
  const std::string hello = "{\"execute\":\"qmp_capabilities\"}\n";
  auto defs = run("printf '%s' '" + hello +
                  "{\"execute\":\"query-cpu-definitions\"}\n{\"execute\":\"quit\"}\n' | " + qemu);
  ASSERT_TRUE(defs);
  std::vector<std::string> models;
  std::regex name_re("\"name\": \"([A-Za-z0-9_.-]+-v[0-9]+)\"");
  for (std::sregex_iterator it(defs->begin(), defs->end(), name_re), end; it != end; ++it)
    models.push_back((*it)[1]);
  ASSERT_GT(models.size(), 40u);
  std::string script = hello;
  for (const auto& m : models)
    script +=
        "{\"execute\":\"query-cpu-model-expansion\",\"arguments\":{\"type\":\"static\",\"model\":{"
        "\"name\":\"" +
        m + "\"}}}\n";
  script += "{\"execute\":\"quit\"}\n";
  char path[] = "/tmp/cpumodel-qmp-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  FILE* f = fdopen(fd, "w");
  fputs(script.c_str(), f);
  fclose(f);
  auto out = run(qemu + " < " + path);
  std::remove(path);
  ASSERT_TRUE(out);
  std::istringstream lines(*out);
  std::regex prop_re("\"([a-z0-9_.-]+)\": true");
  size_t checked = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.find("\"props\"") == std::string::npos) continue;
    FeatureSet set;
    for (std::sregex_iterator it(line.begin(), line.end(), prop_re), end; it != end; ++it) {
      std::string p = (*it)[1];
      if (!flags.count(p)) continue;
      auto id = find_feature(p);
      ASSERT_TRUE(id) << p;
      set.add(*id);
    }
    ASSERT_LT(checked, models.size());
    EXPECT_TRUE(set.has("fpu")) << models[checked] << ": expansion not parsed";
    FeatureSet missing = with_requirements(set) - set;
    EXPECT_TRUE(missing.empty()) << models[checked] << " lacks requirements: "
                                 << ::testing::PrintToString(missing.names());
    ++checked;
  }
  EXPECT_EQ(checked, models.size());
}

// libvirt's names (src/cpu_map/x86_features.xml, installed with libvirt0) name the same bits as
// ours wherever QEMU names the bit; the bits QEMU leaves unnamed are exactly the known few.
TEST(LibvirtDifferential, LibvirtNamesAgreeWithTheDictionary) {
  const char* path = "/usr/share/libvirt/cpu_map/x86_features.xml";
  std::ifstream in(path);
  if (!in) GTEST_SKIP() << path << " is not installed (package libvirt0)";
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string xml = ss.str();
  std::regex feature_re("<feature name='([^']+)'>\\s*<(cpuid|msr) ([^>]*)/>");
  std::regex attr_re("(eax_in|ecx_in|index|eax|ebx|ecx|edx)='(0x[0-9a-fA-F]+)'");
  const std::set<std::string> unnamed_in_qemu = {"osxsave",   "ospke",     "cmt",  "pconfig",
                                                 "mbm_total", "mbm_local", "cvt16"};
  size_t agreed = 0;
  for (std::sregex_iterator it(xml.begin(), xml.end(), feature_re), end; it != end; ++it) {
    std::string name = (*it)[1], kind = (*it)[2], attrs = (*it)[3];
    if (name.rfind("vmx-", 0) == 0) continue;
    std::map<std::string, uint32_t> a;
    for (std::sregex_iterator at(attrs.begin(), attrs.end(), attr_re); at != end; ++at)
      a[(*at)[1]] = static_cast<uint32_t>(std::stoul((*at)[2], nullptr, 16));
    std::optional<FeatureId> at_bit;
    for (const FeatureWordInfo& w : feature_words()) {
      bool msr = kind == "msr";
      if (w.is_msr != msr) continue;
      if (msr ? w.leaf_or_msr != a["index"]
              : (w.leaf_or_msr != a["eax_in"] || w.subleaf != a["ecx_in"]))
        continue;
      const char* reg = msr ? (w.reg == Reg::kEdx ? "edx" : "eax") : reg_name(w.reg);
      std::string r = reg;
      for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      uint32_t v = a[r];
      if (v && (v & (v - 1)) == 0)
        at_bit = feature_at(w.word, static_cast<unsigned>(__builtin_ctz(v)));
    }
    auto by_name = find_feature(name);
    if (unnamed_in_qemu.count(name)) {
      EXPECT_FALSE(at_bit) << name << ": QEMU leaves this bit unnamed";
      EXPECT_FALSE(by_name) << name;
      continue;
    }
    ASSERT_TRUE(at_bit) << "libvirt's " << name << " names a bit the dictionary does not";
    EXPECT_EQ(by_name, at_bit) << "libvirt's " << name << " is " << feature(*at_bit).name;
    ++agreed;
  }
  EXPECT_GT(agreed, 150u);
}

}  // namespace
}  // namespace cpumodel
