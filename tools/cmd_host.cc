// cpumodel host [--save FILE] [--json]: probe this machine (CPUID, KVM support, topology, backend).
#include <iostream>

#include "command.h"
#include "cpumodel/cpuid/host_probe.h"

namespace cpumodel::tools {
namespace {

int run(const po::variables_map& vm) {
  auto p = probe_host();
  if (!p) return fail(p.error());
  if (vm.count("save")) {
    std::string path = vm["save"].as<std::string>();
    Status s = write_file_atomic(path, profile_to_yaml(*p));
    if (!s) return fail(s.error());
    if (!vm.count("json")) note("profile saved to " + path);
  }
  if (vm.count("json")) {
    JsonWriter w;
    profile_to_json(*p, w);
    std::cout << w.str() << "\n";
  } else {
    std::cout << host_summary(*p);
  }
  return kExitOk;
}

void options(po::options_description& o, po::positional_options_description&) {
  o.add_options()("save", po::value<std::string>()->value_name("FILE"), "write the profile as YAML (atomically)")(
      "json", "print the whole profile as JSON");
}

const Registrar reg({"host", "host [--save FILE] [--json]",
                     "probe this machine (CPUID, KVM support, topology, backend)",
                     "cpumodel host --save myhost.yaml", options, run});

}  // namespace
}  // namespace cpumodel::tools
