// Baselines of real CPUID dumps (../shared/data/cpuid-dumps) against the real catalog. The
// invariant is checked independently of the baseline code: the result's -cpu string is expanded
// by the catalog and compared with models' compare_to_host, host by host.
#include <filesystem>
#include <map>

#include "cpumodel/migrate/baseline.h"
#include "cpumodel/models/host_check.h"
#include "test_util.h"

namespace cpumodel {
namespace {

using test::catalog;
using test::load_dump;

struct Computed {
  std::vector<HostProfile> profiles;
  std::vector<HostSummary> hosts;
  std::vector<Baseline> results;
};

Computed compute(const std::vector<std::string>& stems, BaselineOptions opt = {}) {
  Computed c;
  for (const auto& s : stems) c.profiles.push_back(load_dump(s));
  for (const auto& p : c.profiles) c.hosts.push_back(summarize_host(p));
  opt.catalog = &catalog();
  auto r = compute_baseline(c.hosts, catalog().entries(), opt);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  if (r) c.results = std::move(*r);
  return c;
}

// Every host of every group compares IDENTICAL or SUPERSET against the expanded result.
void expect_hosts_run_it(const Computed& c) {
  for (const auto& b : c.results) {
    auto x = catalog().expand(b.cpu_string());
    ASSERT_TRUE(x.ok()) << b.cpu_string() << ": " << x.error().message;
    EXPECT_EQ(x->cpu.features, b.features) << b.cpu_string();
    const ModelEntry* e = b.model ? b.model : catalog().find("base");
    for (size_t i : b.hosts) {
      Comparison cmp = compare_to_host(*x, e && e->vendor_neutral, c.profiles[i]);
      EXPECT_NE(cmp.result, CompareResult::kIncompatible)
          << c.profiles[i].name << " cannot run " << b.cpu_string() << ": "
          << testing::PrintToString(cmp.reasons);
    }
  }
}

std::vector<std::string> dumps_of(const std::string& vendor) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(test::dumps_dir())) {
    std::string n = e.path().filename().string();
    if (e.path().extension() != ".xml" || n.rfind("x86_64-cpuid-", 0) != 0) continue;
    std::string stem = n.substr(13, n.size() - 13 - 4);
    auto p = load_profile(e.path().string());
    if (p && (vendor.empty() || p->cpuid.vendor() == vendor)) out.push_back(stem);
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(BaselineDumps, HaswellAndBroadwellGiveAHaswellModel) {
  auto c = compute({"Xeon-E5-2650-v3", "Xeon-E5-2650-v4"});
  ASSERT_EQ(c.results.size(), 1u);
  const Baseline& b = c.results[0];
  ASSERT_NE(b.model, nullptr);
  // Broadwell adds adx, rdseed, smap, 3dnowprefetch (Intel SDM; QEMU's Broadwell model): the
  // Haswell-EP host lacks them, so Broadwell is blocked by it and Haswell is the answer.
  EXPECT_EQ(b.model->base_name, "Haswell") << b.cpu_string();
  bool broadwell_blocked = false;
  for (const auto& v : b.candidates)
    if (v.model->base_name == "Broadwell" && !v.runnable) {
      broadwell_blocked = true;
      EXPECT_TRUE(v.blocking.has("adx") || v.blocking.has("rdseed") || v.blocking.has("smap"));
    }
  EXPECT_TRUE(broadwell_blocked);
  expect_hosts_run_it(c);
  std::string why;
  for (const auto& l : explain_baseline(b, c.hosts)) why += l + "\n";
  EXPECT_NE(why.find("Broadwell"), std::string::npos) << why;
  EXPECT_NE(why.find("blocked by Xeon-E5-2650-v3"), std::string::npos) << why;
}

TEST(BaselineDumps, PairsOfIntelHostsAreRunByEveryHost) {
  auto intel = dumps_of("GenuineIntel");
  ASSERT_GT(intel.size(), 10u);
  for (size_t i = 0; i + 1 < intel.size(); i += 3) {
    auto c = compute({intel[i], intel[i + 1]});
    ASSERT_EQ(c.results.size(), 1u) << intel[i];
    expect_hosts_run_it(c);
  }
}

TEST(BaselineDumps, EveryDumpPerVendor) {
  BaselineOptions opt;
  opt.per_vendor = true;
  auto c = compute(dumps_of(""), opt);
  ASSERT_GE(c.results.size(), 3u);  // Intel, AMD, Hygon, Centaur/Zhaoxin...
  expect_hosts_run_it(c);
  // The union of the groups is every host, each exactly once.
  size_t n = 0;
  for (const auto& b : c.results) n += b.hosts.size();
  EXPECT_EQ(n, c.hosts.size());
}

TEST(BaselineDumps, EverySingleDumpIsItsOwnBaseline) {
  for (const auto& stem : dumps_of("")) {
    auto c = compute({stem});
    ASSERT_EQ(c.results.size(), 1u) << stem;
    expect_hosts_run_it(c);
    const Baseline& b = c.results[0];
    // A model the catalog recognises for this host (by signature) is chosen unless it is blocked
    // or a newer generation runs: it is never passed over for an older one.
    const HostSummary& h = c.hosts[0];
    const ModelEntry* known = catalog().recognise(h.vendor, h.family, h.model, h.stepping);
    if (!known || !b.model) continue;
    for (const auto& v : b.candidates) {
      if (v.model->base_name == known->base_name && v.runnable) {
        EXPECT_GE(b.model->generation, known->generation) << stem << ": " << b.cpu_string();
      }
    }
  }
}

TEST(BaselineDumps, MixedVendorsNameTheGroups) {
  std::vector<HostSummary> hosts = {summarize_host(load_dump("Xeon-E5-2650-v3")),
                                    summarize_host(load_dump("EPYC-7601-32-Core"))};
  auto r = compute_baseline(hosts, catalog().entries(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("GenuineIntel (Xeon-E5-2650-v3)"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("AuthenticAMD (EPYC-7601-32-Core)"), std::string::npos) << r.error().message;
}

TEST(BaselineDumps, RawCpuidIsNoted) {
  auto c = compute({"Xeon-Gold-6148", "Xeon-Gold-5115"});
  ASSERT_EQ(c.results.size(), 1u);
  bool noted = false;
  for (const auto& n : c.results[0].notes) noted |= n.find("raw CPUID was used") != std::string::npos;
  EXPECT_TRUE(noted);
  // Bits KVM never gives a guest are not offered as +f, even if both dumps show them.
  EXPECT_FALSE(c.results[0].added.has("monitor"));
  EXPECT_FALSE(c.results[0].added.has("ds"));
  expect_hosts_run_it(c);
}

TEST(BaselineDumps, SkylakeServersGetASkylakeOrNewerServerModel) {
  // Two Skylake-SP parts (family 6 model 0x55): QEMU's Skylake-Server signature.
  auto c = compute({"Xeon-Gold-6148", "Xeon-Gold-6130"});
  ASSERT_EQ(c.results.size(), 1u);
  ASSERT_NE(c.results[0].model, nullptr);
  EXPECT_NE(c.results[0].model->base_name.find("Server"), std::string::npos) << c.results[0].cpu_string();
  expect_hosts_run_it(c);
}

}  // namespace
}  // namespace cpumodel
