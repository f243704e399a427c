// The baseline invariant, checked on every run: each host compares IDENTICAL or SUPERSET.
#include <cstdio>

#include "baseline_internal.h"

namespace cpumodel::internal {
namespace {

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// Why `h` cannot run the result, or "" when it can.
std::string host_problem(const Baseline& b, const HostSummary& h) {
  if (h.vendor != b.vendor) return "vendor " + h.vendor + " is not " + b.vendor;
  FeatureSet lacks = b.features - h.features;
  if (!lacks.empty()) return "lacks " + describe_feature(lacks.ids()[0]) + (lacks.count() > 1 ? " and more" : "");
  if (h.phys_bits < b.phys_bits) return "phys-bits " + std::to_string(h.phys_bits) + " < " + std::to_string(b.phys_bits);
  if ((b.xcr0 & ~h.xcr0) || (b.xss & ~h.xss)) return "XSAVE components " + hex(h.xcr0) + " lack some of " + hex(b.xcr0);
  if (h.level < b.level || h.xlevel < b.xlevel) return "level/xlevel " + hex(h.level) + "/" + hex(h.xlevel) + " below the baseline's";
  return "";
}

}  // namespace

Status check_baseline(Baseline& b, std::span<const HostSummary> hosts, const Catalog* catalog) {
  if (catalog) {
    auto e = catalog->expand(b.cpu_string());
    if (!e) return input_error("internal error: baseline result '" + b.cpu_string() + "' does not expand: " + e.error().message);
    const FeatureSet& got = e->cpu.features;
    if (got != b.features) {
      FeatureSet extra = got - b.features, gone = b.features - got;
      return input_error("internal error: baseline result '" + b.cpu_string() + "' expands to a different set (extra: " +
                         join(extra.names()) + "; missing: " + join(gone.names()) + ")");
    }
  }
  b.verdicts.clear();
  b.verdicts.reserve(b.hosts.size());
  for (size_t i : b.hosts) {
    std::string why = host_problem(b, hosts[i]);
    if (!why.empty())
      return input_error("internal error: baseline check failed: host " + hosts[i].name + " cannot run the result (" + why + ")");
    b.verdicts.push_back(hosts[i].features == b.features ? HostVerdict::kIdentical : HostVerdict::kSuperset);
  }
  return ok_status();
}

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) s += (i ? sep : "") + items[i];
  return s;
}

std::string host_list(std::span<const HostSummary> hosts, const std::vector<size_t>& idx, size_t max,
                      size_t total) {
  if (total == SIZE_MAX) total = idx.size();
  std::string s;
  size_t shown = 0;
  for (; shown < idx.size() && shown < max; ++shown) s += (shown ? ", " : "") + hosts[idx[shown]].name;
  if (total > shown) s += " and " + std::to_string(total - shown) + " more";
  return s;
}

std::vector<size_t> hosts_lacking(std::span<const HostSummary> hosts, const std::vector<size_t>& group,
                                  const FeatureSet& need, size_t max, size_t* count) {
  std::vector<size_t> out;
  size_t n = 0;
  for (size_t i : group) {
    if (need.is_subset_of(hosts[i].features)) continue;
    ++n;
    if (out.size() < max) out.push_back(i);
  }
  if (count) *count = n;
  return out;
}

}  // namespace cpumodel::internal
