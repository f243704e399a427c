// The baseline core: intersect, settle non-feature values, rank and name, check.
#include "cpumodel/migrate/baseline.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "baseline_internal.h"

namespace cpumodel {
namespace {

FeatureId must_find(const char* name) {
  auto id = find_feature(name);
  return id ? *id : FeatureId{0};
}

bool has_invtsc_feature() { return find_feature("invtsc").has_value(); }

// Bits a bare-metal dump shows that KVM never gives a guest (Linux arch/x86/kvm/cpuid.c,
// kvm_set_cpu_caps: not in KVM_GET_SUPPORTED_CPUID), or that mirror CR4 at run time. They stay
// in the intersection (libvirt's baseline of raw dumps has them too) but never become +f.
const FeatureSet& not_for_guests() {
  static const FeatureSet set = [] {
    FeatureSet s;
    for (const char* n : {"pn", "ds", "acpi", "ht", "tm", "ia64", "pbe", "dtes64", "monitor", "ds-cpl", "smx", "est",
                          "tm2", "cid", "xtpr", "pdcm", "dca", "osxsave", "ospke", "ibs", "skinit", "wdt", "lwp",
                          "nodeid-msr", "tce"})
      if (auto id = find_feature(n)) s.add(*id);
    return s;
  }();
  return set;
}

// What may become +f: migratable features a guest can be given (invtsc when settled).
FeatureSet extras_allowed(const Baseline& b) {
  FeatureSet allowed = migratable_features() - not_for_guests();
  if (b.invtsc) allowed.add(must_find("invtsc"));
  return allowed;
}

// Vendor groups in first-seen order.
std::vector<std::pair<std::string, std::vector<size_t>>> vendor_groups(std::span<const HostSummary> hosts) {
  std::vector<std::pair<std::string, std::vector<size_t>>> groups;
  for (size_t i = 0; i < hosts.size(); ++i) {
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == hosts[i].vendor; });
    if (it == groups.end()) groups.push_back({hosts[i].vendor, {i}});
    else it->second.push_back(i);
  }
  return groups;
}

std::string vendor_label(const std::string& v) { return v.empty() ? std::string("(no vendor)") : v; }

std::string mixed_vendor_message(std::span<const HostSummary> hosts,
                                 const std::vector<std::pair<std::string, std::vector<size_t>>>& groups) {
  std::string msg = "hosts mix CPU vendors and no model runs on all of them:";
  for (size_t g = 0; g < groups.size(); ++g) {
    msg += (g ? "; " : " ") + vendor_label(groups[g].first) + " (" +
           internal::host_list(hosts, groups[g].second, 6) + ")";
  }
  return msg + "; use --per-vendor for one baseline per vendor";
}

// invtsc survives only with a pinned TSC frequency and hosts within 250 ppm of each other.
bool settle_invtsc(std::span<const HostSummary> hosts, const std::vector<size_t>& group,
                   const BaselineOptions& opt, Baseline& b) {
  double lo = INFINITY, hi = 0;
  size_t unknown = 0;
  for (size_t i : group) {
    if (!hosts[i].tsc_khz) { ++unknown; continue; }
    lo = std::min(lo, *hosts[i].tsc_khz);
    hi = std::max(hi, *hosts[i].tsc_khz);
  }
  std::string why;
  if (unknown) why = std::to_string(unknown) + " of " + std::to_string(group.size()) + " hosts report no TSC frequency";
  else if ((hi - lo) / lo * 1e6 > kTscTolerancePpm)
    why = "host TSC frequencies differ by " + std::to_string(static_cast<long>(std::lround((hi - lo) / lo * 1e6))) +
          " ppm (" + std::to_string(static_cast<long>(lo)) + "-" + std::to_string(static_cast<long>(hi)) +
          " kHz), more than " + std::to_string(static_cast<int>(kTscTolerancePpm));
  else if (!opt.tsc_khz) why = "no --tsc-khz was given to pin the guest TSC frequency";
  if (why.empty()) {
    b.tsc_khz = opt.tsc_khz;
    return true;
  }
  b.notes.push_back("invtsc dropped: " + why + " (invtsc blocks migration unless every host runs the guest TSC at one "
                    "frequency)");
  return false;
}

// The area the common components need: each host lays them out at its own offsets (AMD places
// PKRU after the AVX-512 state when it has it), so this is the largest any host gives, and a note
// says when the layouts differ.
uint32_t baseline_xsave_size(std::span<const HostSummary> hosts, const std::vector<size_t>& group, uint64_t xcr0,
                             std::vector<std::string>& notes) {
  if ((xcr0 & 3) == 0) return 0;
  uint32_t size = 512 + 64;  // legacy area + XSAVE header
  for (unsigned c = 2; c < 32; ++c) {
    if (!(xcr0 >> c & 1)) continue;
    uint32_t lo = UINT32_MAX, hi = 0;
    for (size_t i : group) {
      lo = std::min(lo, hosts[i].xsave_end[c]);
      hi = std::max(hi, hosts[i].xsave_end[c]);
    }
    size = std::max(size, hi);
    if (lo != hi)
      notes.push_back("XSAVE component " + std::to_string(c) + " ends at byte " + std::to_string(lo) + " on some hosts and " +
                      std::to_string(hi) + " on others: a guest using the standard XSAVE layout must not move between them");
  }
  return size;
}

void settle_values(std::span<const HostSummary> hosts, const std::vector<size_t>& group, Baseline& b) {
  b.phys_bits = UINT32_MAX;
  b.level = b.xlevel = UINT32_MAX;
  b.xcr0 = b.xss = ~uint64_t{0};
  for (size_t i : group) {
    const HostSummary& h = hosts[i];
    b.phys_bits = std::min(b.phys_bits, h.phys_bits);
    b.level = std::min(b.level, h.level);
    b.xlevel = std::min(b.xlevel, h.xlevel);
    b.xcr0 &= h.xcr0;
    b.xss &= h.xss;
  }
  b.xsave_size = baseline_xsave_size(hosts, group, b.xcr0, b.notes);
}

void settle_features(std::span<const HostSummary> hosts, const std::vector<size_t>& group,
                     const BaselineOptions& opt, Baseline& b) {
  FeatureSet all_hosts = hosts[group[0]].features, any_host;
  size_t raw = 0;
  for (size_t i : group) {
    all_hosts &= hosts[i].features;
    any_host |= hosts[i].features;
    if (!hosts[i].from_kvm) ++raw;
  }
  if (raw)
    b.notes.push_back(std::to_string(raw) + " of " + std::to_string(group.size()) +
                      " hosts have no KVM data: their raw CPUID was used (KVM may give a guest less)");
  FeatureSet closed = drop_unsatisfied(all_hosts);
  if (closed != all_hosts)
    b.notes.push_back("dropped because what they need is missing: " + internal::join((all_hosts - closed).names()));
  b.common = closed;
  b.offered = closed;
  if (has_invtsc_feature() && b.common.has(must_find("invtsc"))) {
    b.invtsc = settle_invtsc(hosts, group, opt, b);
    if (!b.invtsc) {
      FeatureSet gone;
      gone.add(must_find("invtsc"));
      b.offered -= gone | dependents_of(gone);
    }
  }
  if (opt.migratable) {
    FeatureSet allowed = migratable_features();
    if (b.invtsc) allowed.add(must_find("invtsc"));
    b.offered &= allowed;
  }
  FeatureSet left_out = b.common & not_for_guests();
  if (!left_out.empty())
    b.notes.push_back("left out what KVM never gives a guest (the raw CPUID shows it): " + internal::join(left_out.names()));
  for (FeatureId id : (any_host - closed).ids()) b.dropped.push_back(DroppedFeature{id, {}});
}

// What the model gives a guest as the catalog expands it (QEMU's KVM defaults applied: kvmclock
// and friends on; acpi, monitor, svm off), or its definition without a catalog.
Result<FeatureSet> model_gives(const ModelEntry& m, const Catalog* catalog) {
  if (!catalog) return m.definition.features;
  auto x = catalog->expand(m.name);
  if (!x) return input_error("internal error: catalog model " + m.name + " does not expand: " + x.error().message);
  return x->cpu.features;
}

Status name_result(std::span<const ModelEntry> models, std::span<const FeatureSet> gives,
                   std::span<const HostSummary> hosts, const std::vector<size_t>& group, const Catalog* catalog,
                   Baseline& b) {
  b.candidates = internal::rank_models(models, gives, hosts, group, b.vendor, b.offered, b.common - b.offered);
  FeatureSet allowed = extras_allowed(b);
  for (const auto& c : b.candidates) {
    if (!c.runnable) continue;
    b.model = c.model;
    break;
  }
  if (!b.model) {
    b.features = drop_unsatisfied(b.offered & allowed);
    b.added = b.features;
    b.notes.push_back("no catalog model of vendor " + vendor_label(b.vendor) +
                      " runs on every host: the result is the common feature set on the 'base' model");
    return ok_status();
  }
  size_t index = static_cast<size_t>(b.model - models.data());
  auto gives_one = gives.empty() ? model_gives(*b.model, catalog) : Result<FeatureSet>(gives[index]);
  if (!gives_one) return gives_one.error();
  const FeatureSet* model_set = &*gives_one;
  // Features the model has but the accelerator turns off are not brought back as +f.
  allowed -= b.model->definition.features - *model_set;
  FeatureSet keep = *model_set & b.offered;
  b.features = drop_unsatisfied(keep | (b.offered & allowed));
  b.added = b.features - *model_set;
  b.removed = *model_set - b.features;
  return ok_status();
}

}  // namespace

const char* ranking_rule() {
  return "candidates are the catalog models of the hosts' vendor that every host runs, where a host "
         "may lack only features QEMU ships some version of that model without (those become -f); "
         "the best is the newest generation, then the model whose family/model signature matches "
         "more hosts, then the fewest -f, then the highest version; extra features every host "
         "shares become +f (migratable ones only)";
}

std::string Baseline::cpu_string() const {
  std::string s = model ? model->name : std::string("base");
  for (const auto& n : added.names()) s += ",+" + n;
  for (const auto& n : removed.names()) s += ",-" + n;
  return s;
}

FeatureSet intersect_features(std::span<const HostSummary> hosts) {
  if (hosts.empty()) return {};
  FeatureSet s = hosts[0].features;
  for (const auto& h : hosts) s &= h.features;
  return s;
}

Result<std::vector<Baseline>> compute_baseline(std::span<const HostSummary> hosts,
                                               std::span<const ModelEntry> models,
                                               const BaselineOptions& options) {
  if (hosts.empty()) return input_error("baseline: no hosts given (pass PROFILE files or a bundle)");
  auto groups = vendor_groups(hosts);
  if (groups.size() > 1 && !options.per_vendor) return input_error(mixed_vendor_message(hosts, groups));
  // What each model gives a guest, expanded once (only with a catalog: QEMU's KVM defaults).
  std::vector<FeatureSet> gives;
  if (options.catalog) {
    gives.reserve(models.size());
    for (const auto& m : models) {
      if (m.kind != ModelEntry::Kind::kModel) {
        gives.push_back(m.definition.features);
        continue;
      }
      auto g = model_gives(m, options.catalog);
      if (!g) return g.error();
      gives.push_back(*g);
    }
  }
  std::vector<Baseline> out;
  for (auto& [vendor, group] : groups) {
    Baseline b;
    b.vendor = vendor;
    b.hosts = group;
    if (group.size() == 1)
      b.notes.push_back("one host: the baseline is what that host can give a guest");
    settle_features(hosts, group, options, b);
    settle_values(hosts, group, b);
    auto named = name_result(models, gives, hosts, group, options.catalog, b);
    if (!named) return named.error();
    auto st = internal::check_baseline(b, hosts, options.catalog);
    if (!st) return st.error();
    out.push_back(std::move(b));
  }
  return out;
}

}  // namespace cpumodel
