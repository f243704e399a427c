// cpumodel show MODEL: one resolved model definition and where each version changed what.
#include <cstdio>
#include <iostream>

#include "command.h"
#include "cpumodel/cpuid/json.h"
#include "cpumodel/models/catalog.h"

namespace cpumodel::tools {
namespace {

std::string hex(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%x", v);
  return b;
}

std::string changes_text(const ModelEntry& e) {
  std::string s;
  for (const auto& c : e.changes) s += (s.empty() ? "" : ", ") + c.key + "=" + c.value;
  return s;
}

void signatures_json(JsonWriter& j, const ModelEntry& e) {
  j.key("signatures").begin_array();
  for (const auto& s : e.signatures) {
    j.begin_object().field("vendor", s.vendor).field("family", s.family);
    j.field("model_min", s.model_min).field("model_max", s.model_max);
    j.field("stepping_min", s.stepping_min).field("stepping_max", s.stepping_max).end_object();
  }
  j.end_array();
}

void print_json(const ModelEntry& e, const std::vector<const ModelEntry*>& versions) {
  const CpuDefinition& d = e.definition;
  JsonWriter j;
  j.begin_object().field("model", e.name).field("vendor", d.vendor).field("family", d.family);
  j.field("model_number", d.model_number).field("stepping", d.stepping).field("model_id", d.model_id);
  j.field("level", uint64_t(d.level)).field("xlevel", uint64_t(d.xlevel));
  j.key("features").strings(d.features.names());
  j.field("alias", e.alias).field("note", e.note).field("deprecated", e.deprecated);
  j.field("base", e.parent).field("cache", e.cache_name).field("generation", e.generation).field("source", e.source);
  signatures_json(j, e);
  j.key("versions").begin_array();
  for (const ModelEntry* v : versions) {
    j.begin_object().field("name", v->name).field("version", v->version).field("alias", v->alias).field("note", v->note);
    j.key("changes").begin_object();
    for (const auto& c : v->changes) j.field(c.key, c.value);
    j.end_object().end_object();
  }
  j.end_array().end_object();
  std::cout << j.str() << "\n";
}

int run(const po::variables_map& vm) {
  auto dirs = vm.count("models-dir") ? vm["models-dir"].as<std::vector<std::string>>() : std::vector<std::string>{};
  auto cat = Catalog::load_default(dirs);
  if (!cat) return fail(cat.error());
  std::string name = vm["model"].as<std::string>();
  const ModelEntry* e = cat->find(name);
  if (!e) return fail(cat->unknown_model_message(name));
  auto versions = cat->versions_of(e->name);
  if (vm.count("json")) {
    print_json(*e, versions);
    return kExitOk;
  }
  const CpuDefinition& d = e->definition;
  std::cout << "model:      " << e->name;
  if (name != e->name) std::cout << "   (" << name << " resolves here)";
  std::cout << "\n";
  if (!e->alias.empty()) std::cout << "alias:      " << e->alias << "\n";
  if (!e->note.empty()) std::cout << "note:       " << e->note << "\n";
  if (e->deprecated) std::cout << "deprecated: yes " << e->deprecation_note << "\n";
  std::cout << "vendor:     " << d.vendor << (e->vendor_neutral ? "  (vendor-neutral)" : "") << "\n"
            << "family:     " << d.family << "  model: " << d.model_number << "  stepping: " << d.stepping << "\n"
            << "model-id:   " << d.model_id << "\n"
            << "level:      " << hex(d.level) << "  xlevel: " << hex(d.xlevel) << "\n";
  if (!e->parent.empty()) std::cout << "based on:   " << e->parent << " (v1 definition, plus/minus features)\n";
  if (!e->cache_name.empty()) std::cout << "cache:      " << e->cache_name << "\n";
  std::cout << "defined at: " << e->source << "\n";
  if (e->kind == ModelEntry::Kind::kModel)
    std::cout << "(the definition as QEMU's cpu.c writes it; `cpumodel expand` adds the KVM defaults)\n";
  print_feature_list(std::cout, d.features);
  if (versions.size() > 1 || (versions.size() == 1 && versions[0]->version)) {
    std::cout << "versions (cumulative: each applies on top of the previous):\n";
    for (const ModelEntry* v : versions) {
      std::cout << "  " << (v == e ? "* " : "  ") << v->name;
      if (!v->alias.empty()) std::cout << " (" << v->alias << ")";
      std::string ch = changes_text(*v);
      std::cout << (ch.empty() ? (v->version == 1 ? ": the model definition (base list)" : ": no change") : ": " + ch);
      if (!v->note.empty()) std::cout << "  [" << v->note << "]";
      std::cout << "\n";
    }
  }
  return kExitOk;
}

void options(po::options_description& o, po::positional_options_description& pos) {
  o.add_options()("model", po::value<std::string>()->required(), "model name, versioned name or alias")(
      "json", "JSON output")("models-dir", po::value<std::vector<std::string>>(), "extra directory of model YAML files");
  pos.add("model", 1);
}

const Registrar reg({"show", "show MODEL [--json] [--models-dir DIR]", "one resolved model definition",
                     "cpumodel show Haswell-noTSX-IBRS", options, run});

}  // namespace
}  // namespace cpumodel::tools
