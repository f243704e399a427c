// --explain and --add: the reasons behind a baseline, in sentences a person reads.
#include <algorithm>
#include <cstdio>
#include <set>

#include "baseline_internal.h"

namespace cpumodel {
namespace {

using internal::host_list;
using internal::hosts_lacking;
using internal::join;

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string first_names(const FeatureSet& s, size_t max) {
  auto names = s.names();
  std::string out;
  for (size_t i = 0; i < names.size() && i < max; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > max) out += ", ...";
  return out;
}

// Dropped features grouped by who lacks them.
void explain_dropped(const Baseline& b, std::span<const HostSummary> hosts, size_t max_hosts,
                     std::vector<std::string>& out) {
  if (b.dropped.empty()) return;
  out.push_back("features not on every host (dropped):");
  for (const auto& d : b.dropped) {
    FeatureSet one;
    one.add(d.id);
    size_t n = 0;
    auto lacking = hosts_lacking(hosts, b.hosts, one, max_hosts, &n);
    out.push_back("  " + std::string(feature(d.id).name) + ": lacked by " + host_list(hosts, lacking, max_hosts, n));
  }
}

// Better-ranked models that are blocked, the nearest misses (fewest blocking features) first.
void explain_models(const Baseline& b, std::span<const HostSummary> hosts, size_t max_hosts,
                    std::vector<std::string>& out) {
  std::set<std::string> seen;
  std::vector<const ModelVerdict*> blocked;
  for (const auto& c : b.candidates) {
    if (c.model == b.model) break;
    if (!c.runnable && seen.insert(c.model->base_name).second) blocked.push_back(&c);
  }
  if (blocked.empty()) return;
  std::stable_sort(blocked.begin(), blocked.end(), [](const ModelVerdict* x, const ModelVerdict* y) {
    return x->blocking.count() < y->blocking.count();
  });
  out.push_back(b.model ? "better-ranked models not chosen (nearest first):" : "models considered (none runs on every host):");
  constexpr size_t kMaxModels = 10;
  for (size_t k = 0; k < blocked.size() && k < kMaxModels; ++k) {
    const ModelVerdict& c = *blocked[k];
    size_t n = 0;
    auto by = hosts_lacking(hosts, b.hosts, c.blocking, max_hosts, &n);
    out.push_back("  " + c.model->name + ": blocked by " + host_list(hosts, by, max_hosts, n) + " (" +
                  first_names(c.blocking, 6) + ")");
  }
  if (blocked.size() > kMaxModels)
    out.push_back("  ... and " + std::to_string(blocked.size() - kMaxModels) + " more, each lacking more features");
}

void explain_choice(const Baseline& b, std::span<const HostSummary> hosts, size_t max_hosts,
                    std::vector<std::string>& out) {
  if (!b.model) return;
  const ModelVerdict* v = nullptr;
  for (const auto& c : b.candidates)
    if (c.model == b.model) v = &c;
  std::string line = "chosen: " + b.model->name + " (generation " + std::to_string(b.model->generation) +
                     ", signature matches " + std::to_string(v ? v->signature_hosts : 0) + " of " +
                     std::to_string(b.hosts.size()) + " hosts, " + std::to_string(b.removed.count()) + " -f)";
  out.push_back(line);
  for (FeatureId id : b.removed.ids()) {
    FeatureSet one;
    one.add(id);
    size_t n = 0;
    auto lacking = hosts_lacking(hosts, b.hosts, one, max_hosts, &n);
    out.push_back("  -" + std::string(feature(id).name) + ": " +
                  (n ? "lacked by " + host_list(hosts, lacking, max_hosts, n)
                     : std::string("not migratable (--migratable)")));
  }
}

void explain_values(const Baseline& b, std::span<const HostSummary> hosts, size_t max_hosts,
                    std::vector<std::string>& out) {
  std::vector<size_t> smallest;
  for (size_t i : b.hosts)
    if (hosts[i].phys_bits == b.phys_bits) smallest.push_back(i);
  out.push_back("phys-bits " + std::to_string(b.phys_bits) + ": the smallest, from " +
                host_list(hosts, smallest, max_hosts));
  out.push_back("XSAVE components " + hex(b.xcr0) + " (supervisor " + hex(b.xss) + "), area " +
                std::to_string(b.xsave_size) + " bytes: components every host has");
  out.push_back("level " + hex(b.level) + ", xlevel " + hex(b.xlevel) + ": the smallest of the hosts");
}

}  // namespace

std::vector<std::string> explain_baseline(const Baseline& b, std::span<const HostSummary> hosts, size_t max_hosts) {
  std::vector<std::string> out;
  out.push_back(std::string("rule: ") + ranking_rule());
  out.push_back(std::to_string(b.hosts.size()) + " hosts, vendor " + (b.vendor.empty() ? "(none)" : b.vendor));
  explain_choice(b, hosts, max_hosts, out);
  explain_models(b, hosts, max_hosts, out);
  explain_dropped(b, hosts, max_hosts, out);
  explain_values(b, hosts, max_hosts, out);
  for (const auto& n : b.notes) out.push_back("note: " + n);
  return out;
}

std::vector<std::string> describe_cost(const Baseline& before, const Baseline& after) {
  std::vector<std::string> out;
  FeatureSet lost = before.features - after.features;
  out.push_back(lost.empty() ? "features lost: none" : "features lost: " + join(lost.names()));
  std::string m0 = before.model ? before.model->name : "(none)", m1 = after.model ? after.model->name : "(none)";
  out.push_back(m0 == m1 ? "model unchanged: " + m0 : "model: " + m0 + " -> " + m1);
  out.push_back("-cpu " + before.cpu_string() + " -> " + after.cpu_string());
  if (before.phys_bits != after.phys_bits)
    out.push_back("phys-bits " + std::to_string(before.phys_bits) + " -> " + std::to_string(after.phys_bits));
  if (before.xsave_size != after.xsave_size || before.xcr0 != after.xcr0)
    out.push_back("XSAVE components " + hex(before.xcr0) + " -> " + hex(after.xcr0) + ", area " +
                  std::to_string(before.xsave_size) + " -> " + std::to_string(after.xsave_size) + " bytes");
  if (before.level != after.level || before.xlevel != after.xlevel)
    out.push_back("level/xlevel " + hex(before.level) + "/" + hex(before.xlevel) + " -> " + hex(after.level) + "/" +
                  hex(after.xlevel));
  if (before.invtsc != after.invtsc) out.push_back(std::string("invtsc ") + (after.invtsc ? "kept" : "lost"));
  return out;
}

}  // namespace cpumodel
