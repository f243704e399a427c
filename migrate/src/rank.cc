// Ranking catalog models for a baseline (the rule is ranking_rule() in baseline.cc).
#include <algorithm>
#include <map>
#include <tuple>

#include "baseline_internal.h"

namespace cpumodel {

FeatureSet version_variable_features(std::span<const ModelEntry> models, const ModelEntry& model) {
  FeatureSet any, every = all_features();
  for (const auto& m : models) {
    if (m.base_name != model.base_name || m.kind != ModelEntry::Kind::kModel) continue;
    any |= m.definition.features;
    every &= m.definition.features;
  }
  return any - every;
}

namespace internal {
namespace {

struct HostSig {
  unsigned family, model, stepping;
  auto operator<=>(const HostSig&) const = default;
};

bool signature_matches(const ModelEntry& m, const std::string& vendor, const HostSig& h) {
  for (const auto& s : m.signatures)
    if (s.matches(vendor, h.family, h.model, h.stepping)) return true;
  return false;
}

// Ranking key: smaller is better.
auto rank_key(const ModelVerdict& v) {
  return std::make_tuple(-static_cast<long>(v.model->generation), -static_cast<long>(v.signature_hosts),
                         v.missing.count(), -static_cast<long>(v.model->version), v.model->name);
}

}  // namespace

std::vector<ModelVerdict> rank_models(std::span<const ModelEntry> models, std::span<const FeatureSet> gives,
                                      std::span<const HostSummary> hosts, const std::vector<size_t>& group,
                                      const std::string& vendor, const FeatureSet& offered,
                                      const FeatureSet& also_removable) {
  // Distinct family/model pairs with their host counts: signatures are checked per pair.
  std::map<HostSig, unsigned> sigs;
  for (size_t i : group) ++sigs[HostSig{hosts[i].family, hosts[i].model, hosts[i].stepping}];
  std::map<std::string, FeatureSet> variable;  // per base name
  std::vector<ModelVerdict> out;
  for (size_t k = 0; k < models.size(); ++k) {
    const ModelEntry& m = models[k];
    if (m.kind != ModelEntry::Kind::kModel || m.definition.vendor != vendor) continue;
    auto it = variable.find(m.base_name);
    if (it == variable.end()) it = variable.emplace(m.base_name, version_variable_features(models, m)).first;
    ModelVerdict v;
    v.model = &m;
    v.missing = (gives.empty() ? m.definition.features : gives[k]) - offered;
    v.blocking = v.missing - it->second - also_removable;
    v.runnable = v.blocking.empty();
    for (const auto& [fm, n] : sigs)
      if (signature_matches(m, vendor, fm)) v.signature_hosts += n;
    out.push_back(std::move(v));
  }
  std::sort(out.begin(), out.end(), [](const ModelVerdict& a, const ModelVerdict& b) { return rank_key(a) < rank_key(b); });
  return out;
}

}  // namespace internal
}  // namespace cpumodel
