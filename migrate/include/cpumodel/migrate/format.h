// Output formats of `cpumodel baseline`: text (for people), qemu (-cpu string), libvirt (<cpu>
// XML), firecracker (custom CPU template JSON), yaml (a catalog model entry), json (CLI.md), html.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cpumodel/cpuid/result.h"
#include "cpumodel/migrate/baseline.h"

namespace cpumodel {

enum class BaselineFormat { kText, kQemu, kLibvirt, kFirecracker, kYaml, kJson, kHtml };
Result<BaselineFormat> parse_baseline_format(std::string_view name);

struct BaselineReport {
  std::span<const Baseline> results;       // one per vendor group
  std::span<const HostSummary> hosts;
  const Catalog* catalog = nullptr;        // libvirt/yaml look models up
  bool expand = false;                     // every feature instead of model + delta
  bool explain = false;
  std::string model_name = "Cluster-Baseline";  // the yaml entry's name
  std::vector<std::string> add_cost;       // --add: describe_cost() lines, with a heading
};

// Renders the report. Errors: firecracker with several vendor groups.
Result<std::string> render_baseline(const BaselineReport& report, BaselineFormat format);

// Pieces used by the formats and tests.
std::string libvirt_feature_name(FeatureId id);     // "" when libvirt 9.0 does not know it
bool libvirt_knows_model(std::string_view name);    // libvirt 9.0's cpu_map
std::string libvirt_vendor_name(std::string_view cpuid_vendor);  // "Intel", "AMD", "Hygon", ""
std::string baseline_libvirt(const Baseline& b, const Catalog* catalog);
// A host CPU as libvirt's <cpu> (what `virsh cpu-baseline` reads): model 486 plus every feature
// libvirt 9.0 knows, so libvirt sees exactly `features`.
std::string libvirt_host_xml(const std::string& cpuid_vendor, const FeatureSet& features);
Result<std::string> baseline_firecracker(const Baseline& b);
std::string baseline_html(const BaselineReport& report);

}  // namespace cpumodel
