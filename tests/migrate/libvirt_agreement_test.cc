// Agreement with libvirt 9.0's `virsh cpu-baseline --features` on real dumps. Each host goes to
// libvirt as the <cpu> of its raw CPUID features (libvirt_host_xml: model 486 + every feature in
// libvirt's names); libvirt's expanded baseline is compared, after name mapping, with our
// intersection. Differences explained by a rule are accepted with that rule as the reason; any
// other difference must be listed with its reason in golden/libvirt_baseline_differences.txt.
#include <fstream>
#include <map>
#include <regex>
#include <set>

#include "cpumodel/migrate/format.h"
#include "test_util.h"

namespace cpumodel {
namespace {

using test::TempDir;

// golden: "feature  ours|libvirt  reason..." -- the side that has the feature.
std::map<std::pair<std::string, std::string>, std::string> known_differences() {
  std::map<std::pair<std::string, std::string>, std::string> out;
  std::ifstream in(std::string(CPUMODEL_SOURCE_DATA_DIR) + "/../tests/migrate/golden/libvirt_baseline_differences.txt");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    std::string feat, side, reason;
    ss >> feat >> side;
    std::getline(ss, reason);
    out[{feat, side}] = reason;
  }
  return out;
}

Result<FeatureSet> virsh_baseline(const std::string& xml_path, std::vector<std::string>* unknown) {
  std::string cmd = "virsh -c test:///default cpu-baseline --features " + xml_path + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return input_error("popen");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  if (::pclose(p) != 0) return input_error("virsh failed: " + out);
  FeatureSet s;
  std::regex re("<feature policy='(require|disable)' name='([^']+)'/>");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), re); it != std::sregex_iterator(); ++it) {
    auto id = find_feature((*it)[2].str());
    if (!id) {
      unknown->push_back((*it)[2].str());
      continue;
    }
    if ((*it)[1].str() == "require") s.add(*id);
  }
  return s;
}

struct Difference {
  std::string feature, side, reason;
};

// Compares one group; returns the differences that no rule explains.
std::vector<Difference> compare_group(const std::vector<std::string>& stems, std::vector<Difference>* explained) {
  TempDir dir;
  std::string xml;
  std::vector<HostSummary> hosts;
  FeatureSet raw_all = all_features(), synthesised_missing;
  for (const auto& s : stems) {
    HostProfile p = test::load_dump(s);
    FeatureSet raw = features_of(p.cpuid, p.msrs);
    raw_all &= raw;
    xml += libvirt_host_xml(p.cpuid.vendor(), raw);
    hosts.push_back(summarize_host(p));
  }
  std::ofstream(dir.file("hosts.xml")) << xml;
  std::vector<std::string> unknown;
  auto lv = virsh_baseline(dir.file("hosts.xml"), &unknown);
  EXPECT_TRUE(lv.ok()) << lv.error().message;
  EXPECT_TRUE(unknown.empty()) << "libvirt names our dictionary does not resolve: " << testing::PrintToString(unknown);
  auto ours = compute_baseline(hosts, {}, {});
  EXPECT_TRUE(ours.ok()) << (ours.ok() ? "" : ours.error().message);
  if (!lv.ok() || !ours.ok()) return {};
  const FeatureSet& common = (*ours)[0].common;
  std::vector<Difference> open;
  auto note = [&](FeatureId id, const char* side, std::string reason) {
    Difference d{feature(id).name, side, std::move(reason)};
    (d.reason.empty() ? open : *explained).push_back(d);
  };
  for (FeatureId id : (common - *lv).ids()) {
    if (libvirt_feature_name(id).empty()) note(id, "ours", "libvirt 9.0 does not know this feature");
    else if (kvm_synthesised_features().has(id) && !raw_all.has(id))
      note(id, "ours", "KVM synthesises it on every host; libvirt baselines the raw CPUID");
    else note(id, "ours", "");
  }
  for (FeatureId id : (*lv - common).ids()) {
    if (raw_all.has(id) && !common.has(id))
      note(id, "libvirt", "our dependency closure drops it (needs " + std::string(feature(id).depends) + ")");
    else note(id, "libvirt", "");
  }
  return open;
}

std::vector<std::string> intel_dumps() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(test::dumps_dir())) {
    std::string n = e.path().filename().string();
    if (e.path().extension() != ".xml" || n.rfind("x86_64-cpuid-", 0) != 0) continue;
    auto p = load_profile(e.path().string());
    if (p && p->cpuid.vendor() == "GenuineIntel") out.push_back(n.substr(13, n.size() - 17));
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(LibvirtAgreement, PairsAndGroupsOfRealDumps) {
  if (!test::have_program("virsh")) GTEST_SKIP() << "virsh (libvirt-clients) is not installed";
  auto intel = intel_dumps();
  ASSERT_GE(intel.size(), 10u);
  std::vector<std::vector<std::string>> groups = {
      {"Xeon-E5-2650-v3", "Xeon-E5-2650-v4"},
      {"Xeon-Gold-6148", "Xeon-Gold-5115"},
      {"Core-i7-8700", "Core-i5-6600"},
      {"Xeon-Platinum-8268", "Ice-Lake-Server"},
      {"EPYC-7601-32-Core", "EPYC-7502-32-Core"},
      {"EPYC-7713-64-Core", "EPYC-9334-32-Core", "Ryzen-9-3900X-12-Core"},
      {"Opteron-6282", "FX-8150"},
      std::vector<std::string>(intel.begin(), intel.begin() + std::min<size_t>(48, intel.size())),
  };
  for (size_t i = 0; i + 1 < intel.size(); i += 5) groups.push_back({intel[i], intel[i + 1]});
  auto known = known_differences();
  std::set<std::string> report;
  for (const auto& g : groups) {
    std::vector<Difference> explained;
    for (const auto& d : compare_group(g, &explained)) {
      auto it = known.find({d.feature, d.side});
      EXPECT_NE(it, known.end()) << "unexplained difference with libvirt: " << d.feature << " only in " << d.side
                                 << " for " << testing::PrintToString(g)
                                 << " (add it with its reason to golden/libvirt_baseline_differences.txt)";
      if (it != known.end()) report.insert(d.feature + " (" + d.side + "): " + it->second);
    }
    for (const auto& d : explained) report.insert(d.feature + " (" + d.side + "): " + d.reason);
  }
  // The full list, for people: which differences this run saw and why.
  std::ofstream out("libvirt_baseline_differences.observed.txt");
  for (const auto& r : report) out << r << "\n";
  for (const auto& r : report) std::printf("  difference: %s\n", r.c_str());
}

}  // namespace
}  // namespace cpumodel
