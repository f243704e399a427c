// Models against real hosts: the 72 CPUID dumps in ../shared/data/cpuid-dumps.
// Rule (stated in README/list --help): a dump's own generation model is the catalog model whose
// signature (vendor, family, model, stepping) matches the dump; at least one version of it must
// be runnable on the dump, judged against the dump's raw CPUID plus what KVM synthesises on every
// host (host_guest_features), and every version of every newer model of that vendor
// (higher generation) must be blocked.
#include <gtest/gtest.h>

#include <filesystem>

#include "cpumodel/models/host_check.h"
#include "test_util.h"

namespace cpumodel {
namespace {

using testing::catalog;
namespace fs = std::filesystem;

std::vector<std::string> dump_files() {
  std::vector<std::string> out;
  std::string dir = std::string(CPUMODEL_SHARED_DIR) + "/data/cpuid-dumps";
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    auto ext = e.path().extension();
    if (e.is_regular_file() && (ext == ".xml" || ext == ".txt")) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct Signature3 {
  unsigned family, model, stepping;
};

Signature3 signature_of(const CpuidTable& t) {
  uint32_t eax = t.get(1).eax;
  unsigned fam = (eax >> 8) & 0xf;
  return {fam + (fam == 0xf ? (eax >> 20) & 0xff : 0),
          ((eax >> 4) & 0xf) | ((fam == 6 || fam == 0xf) ? ((eax >> 16) & 0xf) << 4 : 0), eax & 0xf};
}

// Dumps whose own generation model cannot run as QEMU defines it, why, and the spec that does run
// (the test checks both: still blocked as is, runnable with the edit).
struct Exception {
  const char* host;
  const char* runs;
  const char* why;
};
constexpr Exception kExceptions[] = {
    {"Core-i5-4670T", "Haswell-noTSX,-xsaveopt", "libvirt's dump lacks CPUID.0DH.01H, so xsaveopt reads as absent"},
    {"Core-i7-2600-xsaveopt", "SandyBridge,-xsaveopt", "libvirt's dump lacks CPUID.0DH.01H"},
    {"Core-i7-3740QM", "IvyBridge,-xsaveopt", "libvirt's dump lacks CPUID.0DH.01H"},
    {"Pentium-P6100", "Westmere,-aes,-pclmulqdq,-sse4.1,-sse4.2", "a Pentium-branded Westmere: AES and SSE4 fused off"},
    {"Phenom-B95", "Opteron_G3,-nx", "NX disabled by the firmware when the dump was taken"},
    {"Atom-P5362", "Snowridge-v2,-pdpe1gb", "this Snow Ridge SKU has no 1 GiB pages"},
    {"Ryzen-9-9950X-16-Core", "EPYC-Turin,-la57,-pcid", "a client Zen 5: no 5-level paging, no PCID"},
    {"Xeon-6788P", "GraniteRapids-v2,-hle,-rtm", "TSX is disabled on shipping Granite Rapids; QEMU's model still has it"},
    {"Xeon-Gold-6530", "SapphireRapids-v3,-hle,-rtm", "Emerald Rapids with TSX disabled by microcode"},
    {"Xeon-Bronze-3408U", "SapphireRapids-v3,-hle,-rtm,-amx-bf16,-amx-int8,-amx-tile,-xfd",
     "a Bronze SKU: no AMX, TSX disabled"},
};

TEST(HostDumps, OwnGenerationRunsNewerModelsDoNot) {
  auto files = dump_files();
  if (files.empty()) GTEST_SKIP() << "no CPUID dumps at " << CPUMODEL_SHARED_DIR << "/data/cpuid-dumps";
  EXPECT_EQ(files.size(), 72u);
  const Catalog& cat = catalog();
  size_t recognised = 0;
  std::string unrecognised;
  for (const auto& f : files) {
    auto host = load_profile(f);
    if (!host) {
      ADD_FAILURE() << "cannot load dump " << f << ": " << host.error().message;
      continue;
    }
    Signature3 s = signature_of(host->cpuid);
    const ModelEntry* gen = cat.recognise(host->cpuid.vendor(), s.family, s.model, s.stepping);
    if (!gen) {
      unrecognised += " " + host->name;
      continue;
    }
    ++recognised;
    bool runs = false;
    std::string blocked_by;
    for (const ModelEntry* v : cat.versions_of(gen->name)) {
      FeatureSet missing = unavailable_features(v->definition, *host);
      runs |= missing.empty();
      if (!missing.empty() && blocked_by.empty()) {
        for (const auto& n : missing.names()) blocked_by += " " + n;
      }
    }
    const Exception* ex = nullptr;
    for (const auto& e : kExceptions)
      if (host->name == e.host) ex = &e;
    if (!ex) {
      EXPECT_TRUE(runs) << host->name << ": no version of " << gen->base_name << " runs (v1 lacks" << blocked_by << ")";
    } else {
      EXPECT_FALSE(runs) << host->name << ": listed as an exception (" << ex->why << ") but " << gen->base_name << " runs";
      auto x = cat.expand(ex->runs);
      ASSERT_TRUE(x.ok()) << x.error().message;
      EXPECT_TRUE(unavailable_features(x->cpu, *host).empty()) << host->name << ": " << ex->runs << " does not run";
    }
    for (const auto& e : cat.entries()) {
      if (e.kind != ModelEntry::Kind::kModel || e.vendor_neutral || e.definition.vendor != gen->definition.vendor) continue;
      if (e.generation <= gen->generation) continue;
      EXPECT_FALSE(unavailable_features(e.definition, *host).empty())
          << host->name << " (" << gen->base_name << ") runs newer model " << e.name;
    }
  }
  std::cout << "recognised " << recognised << " of " << files.size() << " dumps; no QEMU model for:" << unrecognised << "\n";
  EXPECT_GE(recognised, 55u);
}

TEST(HostDumps, CompareIsLibvirtLike) {
  std::string dir = std::string(CPUMODEL_SHARED_DIR) + "/data/cpuid-dumps/";
  auto host = load_profile(dir + "x86_64-cpuid-Xeon-E5-2650-v3.xml");  // Haswell-EP
  if (!host) GTEST_SKIP() << host.error().message;
  const Catalog& cat = catalog();
  auto hsw = cat.expand("Haswell-noTSX", &*host);  // -IBRS needs spec-ctrl, which this dump predates
  ASSERT_TRUE(hsw.ok());
  Comparison c = compare_to_host(*hsw, false, *host);
  EXPECT_EQ(c.result, CompareResult::kSuperset);
  EXPECT_TRUE(c.vendor_match);
  auto skx = cat.expand("Skylake-Server", &*host);
  Comparison bad = compare_to_host(*skx, false, *host);
  EXPECT_EQ(bad.result, CompareResult::kIncompatible);
  EXPECT_TRUE(bad.missing.has("avx512f"));
  bool named = false;
  for (const auto& r : bad.reasons) named |= r.find("CPUID.07H:EBX.avx512f [bit 16]") != std::string::npos;
  EXPECT_TRUE(named);
  auto epyc = cat.expand("EPYC", &*host);
  Comparison vendor = compare_to_host(*epyc, false, *host);
  EXPECT_FALSE(vendor.vendor_match);
  EXPECT_EQ(vendor.result, CompareResult::kIncompatible);
  // The host compared with itself is IDENTICAL.
  auto self = cat.expand("max", &*host);
  EXPECT_EQ(compare_to_host(*self, true, *host).result, CompareResult::kIdentical);
}

TEST(HostDumps, CliListAndCompareExitCodes) {
  std::string dump = std::string(CPUMODEL_SHARED_DIR) + "/data/cpuid-dumps/x86_64-cpuid-Xeon-E5-2650-v3.xml";
  if (!fs::exists(dump)) GTEST_SKIP() << "no dump";
  std::string bin = CPUMODEL_BINARY;
  EXPECT_EQ(std::system((bin + " compare Haswell-noTSX --host " + dump + " >/dev/null").c_str()), 0);
  EXPECT_EQ(WEXITSTATUS(std::system((bin + " compare Skylake-Server --host " + dump + " >/dev/null").c_str())), 1);
  EXPECT_EQ(WEXITSTATUS(std::system((bin + " compare Nosuch --host " + dump + " 2>/dev/null").c_str())), 2);
  EXPECT_EQ(std::system((bin + " list --host " + dump + " --json >/dev/null").c_str()), 0);
}

}  // namespace
}  // namespace cpumodel
