// cpumodel decode PROFILE... [--json]: vendor, signature, brand, named features, unknown set bits.
#include <iostream>

#include "command.h"
#include "cpumodel/cpuid/decode.h"
#include "cpumodel/cpuid/profile.h"

namespace cpumodel::tools {
namespace {

int run(const po::variables_map& vm) {
  if (!vm.count("profiles")) return fail("decode: no PROFILE given (see 'cpumodel decode --help')");
  auto files = vm["profiles"].as<std::vector<std::string>>();
  bool json = vm.count("json");
  // Load everything first: a bad file fails the run before any output.
  std::vector<HostProfile> profiles;
  for (const auto& f : files) {
    auto p = load_profile(f);
    if (!p) return fail(p.error());
    profiles.push_back(std::move(*p));
  }
  JsonWriter w;
  if (json && profiles.size() > 1) w.begin_array();
  std::string text;
  for (const auto& p : profiles) {
    DecodedCpu d = decode_cpu(p.cpuid, p.msrs);
    if (json) decode_to_json(d, w);
    else text += (text.empty() ? "" : "\n") + decode_to_text(d, p.source + " (" + p.format + ")");
  }
  if (json && profiles.size() > 1) w.end_array();
  std::cout << (json ? w.str() + "\n" : text);
  return kExitOk;
}

void options(po::options_description& o, po::positional_options_description& pos) {
  o.add_options()("profiles", po::value<std::vector<std::string>>()->value_name("PROFILE..."),
                  "host profiles in any format (YAML, libvirt XML, cpuid -r, AIDA64)")(
      "json", "JSON output (an array when several profiles are given)");
  pos.add("profiles", -1);
}

const Registrar reg({"decode", "decode PROFILE... [--json]",
                     "vendor, signature, brand, named features, unknown set bits",
                     "cpumodel decode data/hosts/intel/Xeon-E5-2650-v3.yaml", options, run});

}  // namespace
}  // namespace cpumodel::tools
