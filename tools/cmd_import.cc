// cpumodel import FILE... --out DIR: convert dumps (libvirt XML, cpuid -r, AIDA64, our YAML) into
// our YAML profiles, one DIR/<name>.yaml per input.
#include <sys/stat.h>

#include <iostream>
#include <set>

#include "command.h"
#include "cpumodel/cpuid/profile.h"
#include "cpumodel/migrate/bundle.h"

namespace cpumodel::tools {
namespace {

int run(const po::variables_map& vm) {
  if (vm.count("bundle")) {  // many profiles in one protobuf bundle (cpumodel::migrate)
    if (!vm.count("files")) return fail("import: no input FILE given (see 'cpumodel import --help')");
    auto inputs = vm["files"].as<std::vector<std::string>>();
    bool show = stderr_is_tty() && inputs.size() > 20;
    auto n = import_bundle(inputs, vm["bundle"].as<std::string>(), [&](size_t done, size_t total) {
      if (show) std::cerr << "\rimported " << done << "/" << total << (done == total ? "\n" : "") << std::flush;
    });
    if (!n) return fail(n.error());
    std::cout << "wrote " << *n << " host profiles to " << vm["bundle"].as<std::string>() << "\n";
    return kExitOk;
  }
  if (!vm.count("out")) return fail("import: --out DIR is required (see 'cpumodel import --help')");
  if (!vm.count("files")) return fail("import: no input FILE given (see 'cpumodel import --help')");
  std::string dir = vm["out"].as<std::string>();
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return fail("import: output directory '" + dir + "' does not exist");
  if (!S_ISDIR(st.st_mode)) return fail("import: --out '" + dir + "' is a file, not a directory");
  auto files = vm["files"].as<std::vector<std::string>>();
  std::set<std::string> written;
  bool tty = stderr_is_tty() && files.size() > 20;
  for (size_t i = 0; i < files.size(); ++i) {
    auto out = import_profile(files[i], dir);
    if (!out) return fail(out.error());
    if (!written.insert(*out).second) return fail(files[i] + ": writes " + *out + " again (two inputs share a name)");
    if (tty) std::cerr << "\rimported " << i + 1 << "/" << files.size() << std::flush;
    else std::cout << files[i] << " -> " << *out << "\n";
  }
  if (tty) std::cerr << "\n" << "imported " << files.size() << " profiles into " << dir << "\n";
  return kExitOk;
}

void options(po::options_description& o, po::positional_options_description& pos) {
  o.add_options()("files", po::value<std::vector<std::string>>()->value_name("FILE..."), "dumps to convert")(
      "out", po::value<std::string>()->value_name("DIR"), "directory for DIR/<name>.yaml")(
      "bundle", po::value<std::string>()->value_name("FILE.pb"), "write one protobuf bundle of every input instead");
  pos.add("files", -1);
}

const Registrar reg({"import", "import FILE... (--out DIR | --bundle FILE.pb)",
                     "convert dumps (libvirt XML, cpuid -r, AIDA64, YAML) into profiles",
                     "cpumodel import x86_64-cpuid-EPYC-7601-32-Core.xml --out data/hosts/amd", options, run});

}  // namespace
}  // namespace cpumodel::tools
