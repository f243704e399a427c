// cpumodel expand SPEC: the full feature set after versions, edits and dependency closure.
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

void print_set(const char* label, const FeatureSet& s) {
  if (s.empty()) return;
  std::cout << label;
  for (const auto& n : s.names()) std::cout << " " << n;
  std::cout << "\n";
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
  auto x = cat->expand(vm["spec"].as<std::string>(), host ? &*host : nullptr, host && vm.count("check"));
  if (!x) return fail(x.error());
  for (const auto& w : x->warnings) warn(w);
  const CpuDefinition& d = x->cpu;
  if (vm.count("json")) {
    JsonWriter j;
    j.begin_object().field("model", d.model).field("vendor", d.vendor).field("family", d.family);
    j.field("model_number", d.model_number).field("stepping", d.stepping).field("model_id", d.model_id);
    j.field("level", uint64_t(d.level)).field("xlevel", uint64_t(d.xlevel));
    j.key("features").strings(d.features.names());
    if (!x->resolved_from.empty()) j.field("resolved_from", x->resolved_from);
    j.key("removed_by_closure").strings(x->removed_by_closure.names());
    j.key("added_by_closure").strings(x->added_by_closure.names());
    j.key("filtered_by_host").strings(x->filtered_by_host.names());
    j.key("notes").strings(x->notes);
    j.key("warnings").strings(x->warnings);
    j.end_object();
    std::cout << j.str() << "\n";
    return kExitOk;
  }
  std::cout << "model:     " << d.model << (x->resolved_from.empty() ? "" : "   (" + x->resolved_from + ")") << "\n"
            << "vendor:    " << d.vendor << "\n"
            << "family:    " << d.family << "  model: " << d.model_number << "  stepping: " << d.stepping << "\n"
            << "model-id:  " << d.model_id << "\n"
            << "level:     " << hex(d.level) << "  xlevel: " << hex(d.xlevel) << "\n";
  if (d.phys_bits) std::cout << "phys-bits: " << *d.phys_bits << "\n";
  if (d.tsc_khz) std::cout << "tsc:       " << *d.tsc_khz << " kHz\n";
  print_feature_list(std::cout, d.features);
  print_set("removed by dependency closure:", x->removed_by_closure);
  print_set("added by dependency closure:", x->added_by_closure);
  print_set("filtered (host lacks):", x->filtered_by_host);
  for (const auto& n : x->notes) std::cout << "note: " << n << "\n";
  return kExitOk;
}

void options(po::options_description& o, po::positional_options_description& pos) {
  o.add_options()("spec", po::value<std::string>()->required(), "MODEL[,+feat][,-feat][,feat=on|off][,prop=value]")(
      "host", po::value<std::string>(), "host profile (needed for host/max; with --check, filter to it)")(
      "check", "drop what the host cannot give, like QEMU's check")("json", "JSON output")(
      "models-dir", po::value<std::vector<std::string>>(), "extra directory of model YAML files");
  pos.add("spec", 1);
}

const Registrar reg({"expand", "expand SPEC [--json] [--host PROFILE [--check]] [--models-dir DIR]",
                     "the full feature set after versions, edits and closure",
                     "cpumodel expand Haswell-noTSX,-avx --json", options, run});

}  // namespace
}  // namespace cpumodel::tools
