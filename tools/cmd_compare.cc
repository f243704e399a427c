// cpumodel compare SPEC --host PROFILE: IDENTICAL / SUPERSET / INCOMPATIBLE (libvirt's meaning).
#include <iostream>

#include "command.h"
#include "cpumodel/cpuid/json.h"
#include "cpumodel/models/host_check.h"

namespace cpumodel::tools {
namespace {

int run(const po::variables_map& vm) {
  auto dirs = vm.count("models-dir") ? vm["models-dir"].as<std::vector<std::string>>() : std::vector<std::string>{};
  auto cat = Catalog::load_default(dirs);
  if (!cat) return fail(cat.error());
  auto host = load_profile(vm["host"].as<std::string>());
  if (!host) return fail(host.error());
  auto spec = parse_spec(vm["spec"].as<std::string>());
  if (!spec) return fail(spec.error());
  auto x = cat->expand(*spec, &*host, false);
  if (!x) return fail(x.error());
  for (const auto& w : x->warnings) warn(w);
  const ModelEntry* e = cat->find(spec->model);
  Comparison c = compare_to_host(*x, e && e->vendor_neutral, *host);
  int code = c.result == CompareResult::kIncompatible ? kExitNegative : kExitOk;
  if (vm.count("json")) {
    JsonWriter j;
    j.begin_object().field("result", compare_result_name(c.result)).field("model", x->cpu.model);
    j.field("host", host->name);
    j.key("missing").begin_array();
    for (FeatureId id : c.missing.ids())
      j.begin_object().field("feature", feature(id).name).field("cpuid", describe_feature(id)).end_object();
    j.end_array();
    j.field("vendor_match", c.vendor_match).field("vendor_rule_applies", c.vendor_rule_applies);
    j.field("host_vendor", c.host_vendor).field("model_vendor", c.guest_vendor);
    j.key("extra").strings(c.extra.names());
    j.end_object();
    std::cout << j.str() << "\n";
    return code;
  }
  std::cout << compare_result_name(c.result) << ": " << x->cpu.model << " on host " << host->name << "\n";
  for (const auto& r : c.reasons) std::cout << "  " << r << "\n";
  if (c.result == CompareResult::kSuperset)
    std::cout << "  the host also offers " << c.extra.count() << " feature(s) the model does not use\n";
  if (!c.vendor_rule_applies) std::cout << "  (vendor-neutral model: the vendor is not compared)\n";
  return code;
}

void options(po::options_description& o, po::positional_options_description& pos) {
  o.add_options()("spec", po::value<std::string>()->required(), "the guest CPU: MODEL[,+feat][,-feat]...")(
      "host", po::value<std::string>()->required(), "host profile (any supported format)")("json", "JSON output")(
      "models-dir", po::value<std::vector<std::string>>(), "extra directory of model YAML files");
  pos.add("spec", 1);
}

const Registrar reg({"compare", "compare SPEC --host PROFILE [--json] [--models-dir DIR]",
                     "IDENTICAL | SUPERSET | INCOMPATIBLE, and what is missing",
                     "cpumodel compare Skylake-Server-v4 --host ../shared/data/cpuid-dumps/x86_64-cpuid-Xeon-Gold-6148.xml",
                     options, run});

}  // namespace
}  // namespace cpumodel::tools
