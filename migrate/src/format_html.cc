// --format html: one self-contained page per run: the hosts x features matrix with the baseline
// column highlighted and the cells that block a better model marked.
#include <algorithm>
#include <map>
#include <unordered_map>

#include "baseline_internal.h"
#include "cpumodel/migrate/format.h"

namespace cpumodel {
namespace {

constexpr size_t kMaxColumns = 48;

std::string esc(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

constexpr const char* kStyle = R"(
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 6px}
code{background:#f2f2f2;padding:1px 4px;border-radius:3px}
.sum td{padding:1px 12px 1px 0} .notes li,p.notes{color:#555;margin:2px 0} details{margin-top:16px}
table.m{border-collapse:collapse;font-size:12px}
table.m th,table.m td{border:1px solid #ddd;padding:2px 6px;text-align:center}
table.m th.h{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;font-weight:normal;max-height:180px}
table.m td.f{text-align:left;font-family:monospace;white-space:nowrap}
table.m td.f small{color:#888}
.base{background:#fff3b0;font-weight:bold} th.base{background:#ffe066}
.y{color:#2b8a3e} .n{color:#bbb} .blk{background:#ffc9c9;color:#c92a2a;font-weight:bold}
tr.sec td{background:#f8f9fa;text-align:left;font-weight:bold}
.legend span{margin-right:16px}
)";

// Columns: hosts, or groups of hosts with one feature set when there are too many.
struct Column {
  std::string label, title;
  const FeatureSet* features;
};

std::vector<Column> columns(const Baseline& b, std::span<const HostSummary> hosts) {
  std::vector<Column> out;
  if (b.hosts.size() <= kMaxColumns) {
    for (size_t i : b.hosts) out.push_back({hosts[i].name, hosts[i].name, &hosts[i].features});
    return out;
  }
  std::unordered_map<std::bitset<kMaxFeatures>, std::vector<size_t>> groups;
  for (size_t i : b.hosts) groups[hosts[i].features.bits()].push_back(i);
  std::vector<std::vector<size_t>> sorted;
  for (auto& [bits, idx] : groups) sorted.push_back(std::move(idx));
  std::sort(sorted.begin(), sorted.end(), [](const auto& x, const auto& y) { return x.size() > y.size(); });
  for (const auto& idx : sorted) {
    if (out.size() == kMaxColumns) break;
    std::string label = hosts[idx[0]].name + (idx.size() > 1 ? " +" + std::to_string(idx.size() - 1) : "");
    out.push_back({label, internal::host_list(hosts, idx, 10), &hosts[idx[0]].features});
  }
  return out;
}

// Feature -> better-ranked models it blocks.
std::map<FeatureId, std::vector<std::string>> blockers(const Baseline& b) {
  std::map<FeatureId, std::vector<std::string>> out;
  std::vector<std::string> seen;
  for (const auto& c : b.candidates) {
    if (c.model == b.model) break;
    if (c.runnable || std::find(seen.begin(), seen.end(), c.model->base_name) != seen.end()) continue;
    seen.push_back(c.model->base_name);
    for (FeatureId id : c.blocking.ids()) out[id].push_back(c.model->name);
  }
  return out;
}

void matrix(const Baseline& b, std::span<const HostSummary> hosts, std::string& out) {
  auto cols = columns(b, hosts);
  auto blk = blockers(b);
  FeatureSet any;
  for (size_t i : b.hosts) any |= hosts[i].features;
  FeatureSet model = b.model ? b.model->definition.features : FeatureSet{};
  out += "<table class=m><thead><tr><th>feature</th><th class='h base'>baseline</th>";
  for (const auto& c : cols) out += "<th class=h title='" + esc(c.title) + "'>" + esc(c.label) + "</th>";
  out += "</tr></thead><tbody>\n";
  auto row = [&](FeatureId id) {
    const FeatureInfo& f = feature(id);
    std::string cell = b.added.has(id) ? "+" : b.removed.has(id) ? "&minus;" : b.features.has(id) ? "&#10003;" : "";
    out += "<tr><td class=f>" + esc(f.name) + " <small>" + esc(describe_feature(id)) + "</small></td><td class=base>" + cell + "</td>";
    auto it = blk.find(id);
    for (const auto& c : cols) {
      if (c.features->has(id)) out += "<td class=y>&#10003;</td>";
      else if (it != blk.end())
        out += "<td class=blk title='lacks " + esc(f.name) + ": blocks " + esc(internal::join(it->second)) + "'>&#10007;</td>";
      else out += "<td class=n>&middot;</td>";
    }
    out += "</tr>\n";
  };
  std::string span = std::to_string(cols.size() + 2);
  auto section_rows = [&](const char* title, const FeatureSet& set) {
    if (set.empty()) return;
    out += "<tr class=sec><td colspan=" + span + ">" + title + " (" + std::to_string(set.count()) + ")</td></tr>\n";
    for (FeatureId id : set.ids()) row(id);
  };
  section_rows("not on every host", (any | model) - b.common);
  section_rows("on every host, left out (KVM does not give it, or a rule drops it)", b.common - b.features);
  section_rows("in the baseline", b.features);
  out += "</tbody></table>\n";
}

void section(const BaselineReport& r, const Baseline& b, std::string& out) {
  out += "<h1>Cluster baseline: <code>" + esc(b.cpu_string()) + "</code></h1>\n<table class=sum>";
  auto kv = [&](const std::string& k, const std::string& v) { out += "<tr><td>" + esc(k) + "</td><td>" + esc(v) + "</td></tr>"; };
  kv("hosts", std::to_string(b.hosts.size()) + " (" + b.vendor + ")");
  kv("model", b.model ? b.model->name : "none fits every host");
  kv("+f / -f", std::to_string(b.added.count()) + " / " + std::to_string(b.removed.count()));
  kv("phys-bits", std::to_string(b.phys_bits));
  kv("XSAVE area", std::to_string(b.xsave_size) + " bytes");
  kv("invtsc", b.invtsc ? "kept" : "no");
  out += "</table>\n";
  for (const auto& n : b.notes) out += "<p class=notes>" + esc(n) + "</p>\n";
  out += "<p class=legend><span class=y>&#10003; host has it</span><span class=n>&middot; host lacks it</span>"
         "<span class=blk>&#10007; host lacks it and so blocks a newer model</span>"
         "<span class=base>baseline: &#10003; model, + added, &minus; removed</span></p>\n";
  matrix(b, r.hosts, out);
  out += "<details><summary>Why this model (--explain)</summary><ul class=notes>";
  for (const auto& line : explain_baseline(b, r.hosts)) out += "<li>" + esc(line) + "</li>";
  out += "</ul></details>\n";
}

}  // namespace

std::string baseline_html(const BaselineReport& r) {
  std::string out = "<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>cpumodel baseline</title><style>";
  out += kStyle;
  out += "</style></head><body>\n";
  for (const auto& b : r.results) section(r, b, out);
  for (const auto& line : r.add_cost) out += "<p>" + esc(line) + "</p>\n";
  return out + "</body></html>\n";
}

}  // namespace cpumodel
