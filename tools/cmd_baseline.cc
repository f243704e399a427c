// cpumodel baseline PROFILE...: the CPU model every host of a cluster can run (cpumodel::migrate).
#include <iostream>

#include "command.h"
#include "cpumodel/migrate/baseline.h"
#include "cpumodel/migrate/format.h"

namespace cpumodel::tools {
namespace {

// --add PROFILE: the baseline with that host too, as lines for the report.
Result<std::vector<std::string>> add_cost(const std::vector<HostSummary>& hosts, const std::vector<Baseline>& before,
                                          const std::string& add_path, const Catalog& cat, const BaselineOptions& opt) {
  auto extra = load_host_summaries({add_path});
  if (!extra) return extra.error();
  std::vector<HostSummary> all = hosts;
  all.insert(all.end(), extra->begin(), extra->end());
  std::vector<std::string> out{"if " + add_path + " (" + std::to_string(extra->size()) + " host" +
                               (extra->size() == 1 ? "" : "s") + ") joins:"};
  auto after = compute_baseline(all, cat.entries(), opt);
  if (!after) {
    out.push_back("  " + after.error().message);
    return out;
  }
  for (const auto& b : *after)
    for (const auto& old : before)
      if (old.vendor == b.vendor)
        for (const auto& line : describe_cost(old, b)) out.push_back("  " + line);
  return out;
}

int run(const po::variables_map& vm) {
  auto paths = vm.count("args") ? vm["args"].as<std::vector<std::string>>() : std::vector<std::string>{};
  if (paths.empty()) return fail("baseline: no PROFILE given (host profiles or bundles; see 'cpumodel baseline --help')");
  auto format = parse_baseline_format(vm.count("json") ? "json" : vm["format"].as<std::string>());
  if (!format) return fail(format.error());
  auto dirs = vm.count("models-dir") ? vm["models-dir"].as<std::vector<std::string>>() : std::vector<std::string>{};
  auto cat = Catalog::load_default(dirs);
  if (!cat) return fail(cat.error());
  auto hosts = load_host_summaries(paths);
  if (!hosts) return fail(hosts.error());
  BaselineOptions opt;
  opt.migratable = vm.count("migratable") > 0;
  opt.per_vendor = vm.count("per-vendor") > 0;
  if (vm.count("tsc-khz")) opt.tsc_khz = vm["tsc-khz"].as<double>();
  opt.catalog = &*cat;
  auto results = compute_baseline(*hosts, cat->entries(), opt);
  if (!results) return fail(results.error());
  BaselineReport report{*results, *hosts, &*cat, vm.count("expand") > 0, vm.count("explain") > 0,
                        vm["name"].as<std::string>(), {}};
  if (vm.count("add")) {
    auto cost = add_cost(*hosts, *results, vm["add"].as<std::string>(), *cat, opt);
    if (!cost) return fail(cost.error());
    report.add_cost = std::move(*cost);
  }
  auto text = render_baseline(report, *format);
  if (!text) return fail(text.error());
  bool machine = *format != BaselineFormat::kText && *format != BaselineFormat::kJson && *format != BaselineFormat::kHtml;
  if (machine)
    for (const auto& b : *results)
      for (const auto& n : b.notes) note(n);
  if (vm.count("out")) {
    auto st = write_file_atomic(vm["out"].as<std::string>(), *text);
    if (!st) return fail(st.error());
    if (machine && !report.add_cost.empty())
      for (const auto& line : report.add_cost) std::cerr << line << "\n";
    return kExitOk;
  }
  std::cout << *text;
  if (machine && !report.add_cost.empty())
    for (const auto& line : report.add_cost) std::cerr << line << "\n";
  return kExitOk;
}

void options(po::options_description& o, po::positional_options_description& pos) {
  o.add_options()
      ("args", po::value<std::vector<std::string>>(), "host profiles or bundles")
      ("format", po::value<std::string>()->default_value("text"), "text|qemu|libvirt|firecracker|yaml|json|html")
      ("json", "same as --format json")
      ("expand", "list every feature instead of model + delta")
      ("migratable", "drop features that block live migration (the model's too)")
      ("explain", "why: dropped features and who lacks them, models not chosen and what blocks them")
      ("add", po::value<std::string>(), "what adding this host (profile or bundle) would cost")
      ("per-vendor", "hosts of several vendors: one baseline per vendor instead of an error")
      ("tsc-khz", po::value<double>(), "pin the guest TSC frequency (keeps invtsc if hosts agree within 250 ppm)")
      ("out", po::value<std::string>(), "write the result to FILE (atomically) instead of stdout")
      ("name", po::value<std::string>()->default_value("Cluster-Baseline"), "model name for --format yaml")
      ("models-dir", po::value<std::vector<std::string>>(), "extra directory of model YAML files");
  pos.add("args", -1);
}

const Registrar reg({"baseline",
                     "baseline PROFILE... [--expand] [--migratable] [--explain] [--add PROFILE] [--per-vendor]\n"
                     "                [--tsc-khz KHZ] [--format qemu|libvirt|firecracker|yaml|json|html] [--out FILE]",
                     "the best CPU model every host runs, plus +f/-f",
                     "cpumodel baseline --explain ../shared/data/cpuid-dumps/x86_64-cpuid-Xeon-E5-2650-v3.xml "
                     "../shared/data/cpuid-dumps/x86_64-cpuid-Xeon-E5-2650-v4.xml",
                     options, run});

}  // namespace
}  // namespace cpumodel::tools
