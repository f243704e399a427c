// cpumodel complete commands|models|features|options CMD: names for shell completion
// (tools/completion/cpumodel.bash), one per line, from the binary itself so completion follows
// the catalog, user --models-dir additions and the option tables.
#include <iostream>
#include <set>

#include "command.h"
#include "cpumodel/cpuid/features.h"
#include "cpumodel/models/catalog.h"

namespace cpumodel::tools {
namespace {

int complete_options(const std::string& name) {
  for (const auto& c : commands()) {
    if (name != c.name) continue;
    po::options_description opts;
    po::positional_options_description pos;
    c.options(opts, pos);
    std::cout << "--help\n";
    for (const auto& o : opts.options()) {
      const std::string& long_name = o->long_name();
      if (!long_name.empty()) std::cout << "--" << long_name << "\n";
    }
    return kExitOk;
  }
  return fail("complete: unknown command '" + name + "'");
}

int run(const po::variables_map& vm) {
  std::string what = vm["what"].as<std::string>();
  if (what == "commands") {
    for (const auto& c : commands())
      if (std::string_view(c.name) != "complete") std::cout << c.name << "\n";
    return kExitOk;
  }
  if (what == "features") {
    for (const auto& f : feature_table()) std::cout << f.name << "\n";
    return kExitOk;
  }
  if (what == "models") {
    auto cat = Catalog::load_default();
    if (!cat) return fail(cat.error());
    std::set<std::string> names;
    for (const auto& e : cat->entries()) {
      names.insert(e.name);
      names.insert(e.base_name);
      if (!e.alias.empty()) names.insert(e.alias);
    }
    for (const auto& n : names) std::cout << n << "\n";
    return kExitOk;
  }
  if (what == "options") {
    if (!vm.count("command")) return fail("complete options: which command?");
    return complete_options(vm["command"].as<std::string>());
  }
  return fail("complete: expected commands, models, features or options CMD, got '" + what + "'");
}

const Registrar kRegistrar{{
    "complete", "complete commands|models|features|options COMMAND",
    "names for shell completion, one per line", "cpumodel complete models",
    [](po::options_description& opts, po::positional_options_description& pos) {
      opts.add_options()("what", po::value<std::string>()->required(), "commands, models, features or options")(
          "command", po::value<std::string>(), "the command whose options to list");
      pos.add("what", 1).add("command", 1);
    },
    run}};

}  // namespace
}  // namespace cpumodel::tools
