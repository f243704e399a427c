// cpumodel list: the catalog like `qemu-system-x86_64 -cpu help`, optionally judged against a host.
#include <algorithm>
#include <iostream>

#include "command.h"
#include "cpumodel/cpuid/json.h"
#include "cpumodel/models/host_check.h"

namespace cpumodel::tools {
namespace {

struct Row {
  std::string name, alias_of, description;
  const ModelEntry* entry;  // what the name resolves to
  bool deprecated;
};

// QEMU's order: names in byte order, the special models base, host, max last.
std::vector<Row> rows(const Catalog& cat) {
  std::vector<Row> out;
  for (const auto& [name, target] : cat.unversioned_names()) {
    const ModelEntry* e = cat.find(target);
    out.push_back({name, target, "", e, e->deprecated});
  }
  for (const auto& e : cat.entries()) {
    if (e.kind != ModelEntry::Kind::kModel) continue;
    if (!e.alias.empty()) out.push_back({e.alias, e.name, "", &e, e.deprecated});
    std::string d = e.definition.model_id;
    if (!e.note.empty()) d += " [" + e.note + "]";
    out.push_back({e.name, "", d, &e, e.deprecated});
  }
  std::sort(out.begin(), out.end(), [](const Row& a, const Row& b) { return a.name < b.name; });
  static const char* const kSpecial[] = {"base", "host", "max"};
  for (const char* n : kSpecial)
    if (const ModelEntry* e = cat.find(n)) out.push_back({e->name, "", e->note, e, false});
  return out;
}

std::string row_description(const Row& r) {
  std::string d = r.alias_of.empty() ? r.description : "(alias of " + r.alias_of + ")";
  if (r.deprecated) d += " (deprecated)";
  return d;
}

void print_flags(std::ostream& os) {
  os << "\nRecognized CPUID flags:\n";
  size_t width = 0;
  for (const auto& name : all_features().names()) {
    if (width && width + name.size() + 1 > 78) {
      os << "\n";
      width = 0;
    }
    os << (width ? " " : "  ") << name;
    width += name.size() + (width ? 1 : 2);
  }
  os << "\n";
}

std::string pad(std::string s, size_t w) {
  if (s.size() < w) s.resize(w, ' ');
  return s;
}

int run(const po::variables_map& vm) {
  auto dirs = vm.count("models-dir") ? vm["models-dir"].as<std::vector<std::string>>() : std::vector<std::string>{};
  auto cat = Catalog::load_default(dirs);
  if (!cat) return fail(cat.error());
  std::optional<HostProfile> host;
  if (vm.count("host")) {
    auto p = load_profile(vm["host"].as<std::string>());
    if (!p) return fail(p.error());
    host = std::move(*p);
  }
  auto list = rows(*cat);
  auto blocked = [&](const Row& r) {
    if (r.entry->kind == ModelEntry::Kind::kHost || r.entry->kind == ModelEntry::Kind::kMax) return FeatureSet();
    return unavailable_features(r.entry->definition, *host);
  };
  if (vm.count("json")) {
    JsonWriter j;
    j.begin_object();
    if (host) j.field("host", host->name);
    j.key("models").begin_array();
    for (const auto& r : list) {
      j.begin_object().field("name", r.name);
      if (!r.alias_of.empty()) j.field("alias_of", r.alias_of);
      j.field("model_id", r.entry->definition.model_id);
      if (r.alias_of.empty() && !r.entry->note.empty()) j.field("note", r.entry->note);
      j.field("deprecated", r.deprecated);
      if (host) {
        FeatureSet b = blocked(r);
        j.field("runnable", b.empty());
        j.key("unavailable_features").strings(b.names());
      }
      j.end_object();
    }
    j.end_array();
    j.key("flags").strings(all_features().names());
    j.end_object();
    std::cout << j.str() << "\n";
    return kExitOk;
  }
  // One name column as wide as the longest name, and no trailing blanks.
  size_t width = 0;
  for (const auto& r : list) width = std::max(width, r.name.size());
  auto line = [&](const Row& r, const std::string& rest) {
    std::string l = "x86 " + pad(r.name, width) + " " + rest;
    while (!l.empty() && l.back() == ' ') l.pop_back();
    std::cout << l << "\n";
  };
  if (!host) {
    std::cout << "Available CPUs:\n";
    for (const auto& r : list) line(r, row_description(r));
  } else {
    std::cout << "CPU models on host " << host->name << " (" << host->cpuid.vendor() << ", judged against "
              << (host->kvm_cpuid ? "what its KVM supports" : "its raw CPUID plus KVM's synthesised bits") << "):\n";
    for (const auto& r : list) {
      FeatureSet b = blocked(r);
      std::string verdict = b.empty() ? "runnable" : "blocked by:";
      for (const auto& n : b.names()) verdict += " " + n;
      line(r, verdict);
    }
  }
  print_flags(std::cout);
  return kExitOk;
}

void options(po::options_description& o, po::positional_options_description&) {
  o.add_options()("host", po::value<std::string>(), "judge every model against this host profile")(
      "json", "JSON output")("models-dir", po::value<std::vector<std::string>>(), "extra directory of model YAML files");
}

const Registrar reg({"list", "list [--host PROFILE] [--json] [--models-dir DIR]",
                     "CPU models like `qemu -cpu help`, runnable or not on a host",
                     "cpumodel list --host ../shared/data/cpuid-dumps/x86_64-cpuid-Xeon-E5-2650-v3.xml", options, run});

}  // namespace
}  // namespace cpumodel::tools
