// Baseline output: text, qemu, json, yaml, and the dispatch to libvirt/firecracker/html.
#include "cpumodel/migrate/format.h"

#include <cstdio>

#include "baseline_internal.h"
#include "cpumodel/cpuid/json.h"

namespace cpumodel {
namespace {

using internal::join;

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

const char* verdict_name(HostVerdict v) { return v == HostVerdict::kIdentical ? "IDENTICAL" : "SUPERSET"; }

// "base,+fpu,+..." -- every feature spelled out (--expand), or model + delta.
std::string qemu_string(const Baseline& b, bool expand) {
  if (!expand) return b.cpu_string();
  std::string s = "base";
  for (const auto& n : b.features.names()) s += ",+" + n;
  return s;
}

// Words joined by `sep`, lines broken before `width` and continued at `indent`.
std::string wrap(const std::vector<std::string>& words, size_t indent, size_t width = 100, const char* sep = " ") {
  std::string out, line;
  std::string_view trim = std::string_view(sep).substr(0, std::string_view(sep).find_last_not_of(' ') + 1);
  for (size_t i = 0; i < words.size(); ++i) {
    std::string w = words[i] + std::string(i + 1 < words.size() ? trim : "");
    if (!line.empty() && line.size() + 1 + w.size() > width - indent) {
      out += line + "\n" + std::string(indent, ' ');
      line.clear();
    }
    line += (line.empty() ? "" : " ") + w;
  }
  return out + line;
}

std::string host_verdicts(const Baseline& b, std::span<const HostSummary> hosts) {
  if (b.hosts.size() <= 8) {
    std::string s;
    for (size_t k = 0; k < b.hosts.size(); ++k)
      s += (k ? ", " : "") + hosts[b.hosts[k]].name + " " + verdict_name(b.verdicts[k]);
    return s;
  }
  size_t identical = 0;
  for (auto v : b.verdicts) identical += v == HostVerdict::kIdentical;
  return std::to_string(identical) + " IDENTICAL, " + std::to_string(b.verdicts.size() - identical) + " SUPERSET";
}

std::string render_text(const BaselineReport& r) {
  std::string out;
  for (const auto& b : r.results) {
    if (!out.empty()) out += "\n";
    out += "baseline of " + std::to_string(b.hosts.size()) + " host" + (b.hosts.size() == 1 ? "" : "s") + " (" +
           (b.vendor.empty() ? "no vendor" : b.vendor) + ")\n";
    out += "  -cpu       " + qemu_string(b, r.expand) + "\n";
    if (b.model)
      out += "  model      " + b.model->name + (b.model->alias.empty() ? "" : " (" + b.model->alias + ")") + ", " +
             std::to_string(b.added.count()) + " +f, " + std::to_string(b.removed.count()) + " -f\n";
    else
      out += "  model      none fits every host (see note)\n";
    if (r.expand) out += "  features   " + wrap(b.features.names(), 13) + "\n";
    out += "  phys-bits  " + std::to_string(b.phys_bits) + "\n";
    out += "  XSAVE      components " + hex(b.xcr0) + ", area " + std::to_string(b.xsave_size) + " bytes\n";
    out += "  level      " + hex(b.level) + ", xlevel " + hex(b.xlevel) + "\n";
    out += "  invtsc     " + (b.invtsc ? "kept, TSC pinned at " + std::to_string(static_cast<long long>(*b.tsc_khz)) + " kHz"
                                       : std::string("no")) + "\n";
    out += "  hosts      " + host_verdicts(b, r.hosts) + "\n";
    if (r.explain)
      for (const auto& line : explain_baseline(b, r.hosts)) out += "  " + line + "\n";
    else
      for (const auto& n : b.notes) out += "  note: " + n + "\n";
  }
  for (const auto& line : r.add_cost) out += line + "\n";
  return out;
}

void json_one(JsonWriter& j, const Baseline& b, const BaselineReport& r) {
  j.begin_object();
  if (b.model) j.field("model", b.model->name);
  else j.key("model").null();
  j.field("vendor", b.vendor);
  j.field("cpu", b.cpu_string());
  j.key("features_added").strings(b.added.names());
  j.key("features_removed").strings(b.removed.names());
  j.key("features").strings(b.features.names());
  j.key("hosts").begin_array();
  for (size_t k = 0; k < b.hosts.size(); ++k) {
    const HostSummary& h = r.hosts[b.hosts[k]];
    j.begin_object().field("name", h.name).field("result", verdict_name(b.verdicts[k]));
    j.field("kvm_data", h.from_kvm).end_object();
  }
  j.end_array();
  j.field("phys_bits", b.phys_bits);
  j.field("xsave_components", b.xcr0).field("xsave_supervisor", b.xss).field("xsave_size", b.xsave_size);
  j.field("level", b.level).field("xlevel", b.xlevel);
  j.field("invtsc", b.invtsc);
  if (b.tsc_khz) j.field("tsc_khz", *b.tsc_khz);
  std::vector<std::string> dropped;
  for (const auto& d : b.dropped) dropped.emplace_back(feature(d.id).name);
  j.key("features_dropped").strings(dropped);
  j.key("notes").strings(b.notes);
  if (r.explain) j.key("explain").strings(explain_baseline(b, r.hosts));
  j.end_object();
}

std::string render_json(const BaselineReport& r) {
  JsonWriter j;
  if (r.results.size() == 1 && r.add_cost.empty()) {
    json_one(j, r.results[0], r);
    return j.str() + "\n";
  }
  j.begin_object();
  if (r.results.size() == 1) {
    j.key("baseline");
    json_one(j, r.results[0], r);
  } else {
    j.key("baselines").begin_array();
    for (const auto& b : r.results) json_one(j, b, r);
    j.end_array();
  }
  if (!r.add_cost.empty()) j.key("add").strings(r.add_cost);
  j.end_object();
  return j.str() + "\n";
}

std::string yaml_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// A catalog entry (data/models format) whose v1 is exactly the baseline's feature set.
std::string render_yaml(const BaselineReport& r) {
  std::string out = "# Cluster baseline made by `cpumodel baseline --format yaml`; load it with --models-dir.\n";
  out += "models:\n";
  for (const auto& b : r.results) {
    const CpuDefinition* d = b.model ? &b.model->definition : nullptr;
    std::string name = r.model_name + (r.results.size() > 1 ? "-" + b.vendor : "");
    out += "  # " + std::to_string(b.hosts.size()) + " hosts: -cpu " + b.cpu_string() + "\n";
    out += "  # phys-bits " + std::to_string(b.phys_bits) + ", XSAVE area " + std::to_string(b.xsave_size) + " bytes\n";
    out += "  - name: " + name + "\n";
    out += "    vendor: " + yaml_quote(b.vendor) + "\n";
    out += "    family: " + std::to_string(d ? d->family : 6) + "\n";
    out += "    model: " + std::to_string(d ? d->model_number : 0) + "\n";
    out += "    stepping: " + std::to_string(d ? d->stepping : 0) + "\n";
    out += "    level: " + hex(d ? std::min(d->level, b.level) : b.level) + "\n";
    out += "    xlevel: " + hex(d ? std::min(d->xlevel, b.xlevel) : b.xlevel) + "\n";
    out += "    model-id: " + yaml_quote("Cluster baseline (" + (b.model ? b.model->name : std::string("base")) + ")") + "\n";
    out += "    features: [\n      " + wrap(b.features.names(), 6, 100, ", ") + "\n    ]\n";
    out += "    versions:\n      - version: 1\n";
  }
  return out;
}

}  // namespace

Result<BaselineFormat> parse_baseline_format(std::string_view name) {
  static const std::pair<const char*, BaselineFormat> kFormats[] = {
      {"text", BaselineFormat::kText},       {"qemu", BaselineFormat::kQemu}, {"libvirt", BaselineFormat::kLibvirt},
      {"firecracker", BaselineFormat::kFirecracker}, {"yaml", BaselineFormat::kYaml}, {"json", BaselineFormat::kJson},
      {"html", BaselineFormat::kHtml}};
  for (const auto& [n, f] : kFormats)
    if (name == n) return f;
  return input_error("unknown --format '" + std::string(name) + "' (expected text, qemu, libvirt, firecracker, yaml, json or html)");
}

Result<std::string> render_baseline(const BaselineReport& r, BaselineFormat format) {
  switch (format) {
    case BaselineFormat::kText: return render_text(r);
    case BaselineFormat::kJson: return render_json(r);
    case BaselineFormat::kYaml: return render_yaml(r);
    case BaselineFormat::kHtml: return baseline_html(r);
    case BaselineFormat::kQemu: {
      std::string out;
      for (const auto& b : r.results) {
        if (r.results.size() > 1) out += "# " + b.vendor + " (" + std::to_string(b.hosts.size()) + " hosts)\n";
        out += qemu_string(b, r.expand) + "\n";
      }
      return out;
    }
    case BaselineFormat::kLibvirt: {
      std::string out;
      for (const auto& b : r.results) out += baseline_libvirt(b, r.catalog);
      return out;
    }
    case BaselineFormat::kFirecracker:
      if (r.results.size() != 1)
        return input_error("--format firecracker makes one template for one vendor; the hosts form " +
                           std::to_string(r.results.size()) + " vendor groups (baseline each group separately)");
      return baseline_firecracker(r.results[0]);
  }
  return input_error("unknown format");
}

}  // namespace cpumodel
