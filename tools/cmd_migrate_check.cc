// cpumodel migrate-check --cpu SPEC --path A,B[,C...]: along the path and back (cpumodel::migrate).
#include <iostream>

#include "command.h"
#include "cpumodel/migrate/bundle.h"
#include "cpumodel/migrate/migrate_check.h"
#include "cpumodel/migrate/snapshot.h"
#include "cpumodel/migrate/state_check.h"

namespace cpumodel::tools {
namespace {

// A path element is a profile file, a bundle (all its hosts, in order), or BUNDLE#HOST.
Result<std::vector<HostProfile>> load_path(const std::string& list) {
  std::vector<HostProfile> out;
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t end = list.find(',', pos);
    if (end == std::string::npos) end = list.size();
    std::string item = list.substr(pos, end - pos);
    pos = end + 1;
    if (item.empty()) return input_error("--path '" + list + "': empty host at column " + std::to_string(end + 1));
    std::string file = item, host;
    if (size_t hash = item.rfind('#'); hash != std::string::npos) {
      file = item.substr(0, hash);
      host = item.substr(hash + 1);
    }
    auto some = load_profiles(file);
    if (!some) return some.error();
    size_t before = out.size();
    for (auto& p : *some)
      if (host.empty() || p.name == host) out.push_back(std::move(p));
    if (out.size() == before) return input_error(file + ": no host named '" + host + "' in the bundle");
  }
  return out;
}

// --state SNAPSHOT --to PROFILE: can this saved guest resume on that host (state_check.h).
int run_state(const po::variables_map& vm) {
  if (!vm.count("to")) return fail("migrate-check --state needs --to PROFILE (the destination host)");
  if (vm.count("cpu") || vm.count("path")) return fail("migrate-check: --state takes no --cpu or --path");
  auto snap = read_snapshot(vm["state"].as<std::string>());
  if (!snap) return fail(snap.error());
  auto to = load_path(vm["to"].as<std::string>());
  if (!to) return fail(to.error());
  if (to->size() != 1) return fail("--to '" + vm["to"].as<std::string>() + "': one host expected, got " + std::to_string(to->size()));
  StateCheck c = check_state(*snap, vm["state"].as<std::string>(), (*to)[0]);
  std::cout << (vm.count("json") ? state_check_json(c) : state_check_text(c));
  return c.ok ? kExitOk : kExitNegative;
}

int run(const po::variables_map& vm) {
  if (vm.count("state")) return run_state(vm);
  if (!vm.count("cpu") || !vm.count("path")) return fail("migrate-check needs --cpu SPEC --path A,B (or --state SNAPSHOT --to PROFILE)");
  auto dirs = vm.count("models-dir") ? vm["models-dir"].as<std::vector<std::string>>() : std::vector<std::string>{};
  auto cat = Catalog::load_default(dirs);
  if (!cat) return fail(cat.error());
  auto path = load_path(vm["path"].as<std::string>());
  if (!path) return fail(path.error());
  auto m = migrate_check(*cat, vm["cpu"].as<std::string>(), *path);
  if (!m) return fail(m.error());
  std::cout << (vm.count("json") ? migrate_check_json(*m) : migrate_check_text(*m));
  return m->ok ? kExitOk : kExitNegative;
}

void options(po::options_description& o, po::positional_options_description&) {
  o.add_options()
      ("cpu", po::value<std::string>(), "the guest CPU: MODEL[,+feat][,-feat]..., host or max")
      ("path", po::value<std::string>(),
       "hosts in migration order, comma-separated: profiles, bundles, or BUNDLE#HOST; the guest starts on the first")
      ("state", po::value<std::string>(), "a snapshot (cpumodel restore's input): can it resume on --to?")
      ("to", po::value<std::string>(), "with --state: the destination host profile (or BUNDLE#HOST)")
      ("json", "JSON output: ok, hops[] of from, to, ok, reasons[]")
      ("models-dir", po::value<std::vector<std::string>>(), "extra directory of model YAML files");
}

const Registrar reg({"migrate-check", "migrate-check --cpu SPEC --path A,B[,C...] [--json] | --state SNAPSHOT --to PROFILE [--json]",
                     "can a guest started on A go along the path, and back",
                     "cpumodel migrate-check --cpu host --path ../shared/data/cpuid-dumps/x86_64-cpuid-Xeon-E5-2650-v3.xml,"
                     "../shared/data/cpuid-dumps/x86_64-cpuid-Xeon-E5-2650-v4.xml",
                     options, run});

}  // namespace
}  // namespace cpumodel::tools
