// cpumodel cpuid --cpu SPEC [--smp SMP] [--host PROFILE]: the guest CPUID table(s) this toolkit
// would hand KVM_SET_CPUID2, in one of four formats.
#include <iostream>

#include "command.h"
#include "cpumodel/cpuid/guest_cpuid.h"
#include "cpumodel/cpuid/profile.h"
#include "cpumodel/models/catalog.h"

namespace cpumodel::tools {
namespace {

Result<std::vector<size_t>> chosen_vcpus(const po::variables_map& vm, const GuestCpuid& g) {
  std::vector<size_t> which;
  if (vm.count("all")) {
    for (size_t i = 0; i < g.tables.size(); ++i) which.push_back(i);
    return which;
  }
  unsigned v = vm.count("vcpu") ? vm["vcpu"].as<unsigned>() : 0;
  if (v >= g.tables.size())
    return input_error("--vcpu " + std::to_string(v) + ": the guest has vCPUs 0.." + std::to_string(g.tables.size() - 1));
  which.push_back(v);
  return which;
}

void print(const std::string& format, const GuestCpuid& g, const std::vector<size_t>& which,
           const std::string& model) {
  if (format == "json") {
    std::cout << guest_cpuid_json(g, model, which);
    return;
  }
  for (size_t i : which) {
    const CpuidTable& t = g.tables[i];
    if (format == "cpuid-r") {
      std::string text = table_to_cpuid_r(t);  // "CPU:\n..." as `cpuid -1 -r`; `cpuid -r` numbers CPUs
      if (which.size() > 1) text.replace(0, 4, "CPU " + std::to_string(i) + ":");
      std::cout << text;
    } else if (format == "kvm") {
      std::cout << "vCPU " << i << " (APIC ID " << g.vcpus[i].apic_id << "): " << kvm_cpuid2_dump(t);
    } else {
      std::cout << "vCPU " << i << ": " << model << "\n" << describe_guest_cpuid(t, g.vcpus[i], g.smp);
    }
    if (which.size() > 1 && format != "cpuid-r") std::cout << "\n";
  }
}

int run(const po::variables_map& vm) {
  std::string format = vm.count("json") ? "json" : vm["format"].as<std::string>();
  if (format != "table" && format != "json" && format != "cpuid-r" && format != "kvm")
    return fail("--format '" + format + "': expected table, json, cpuid-r or kvm");
  if (vm.count("all") && vm.count("vcpu")) return fail("--vcpu and --all exclude each other");
  auto smp = parse_smp(vm["smp"].as<std::string>());
  if (!smp) return fail(smp.error());
  std::optional<HostProfile> host;
  if (vm.count("host")) {
    auto p = load_profile(vm["host"].as<std::string>());
    if (!p) return fail(p.error());
    host = std::move(*p);
  }
  auto dirs = vm.count("models-dir") ? vm["models-dir"].as<std::vector<std::string>>() : std::vector<std::string>{};
  auto cat = Catalog::load_default(dirs);
  if (!cat) return fail(cat.error());
  auto x = cat->expand(vm["cpu"].as<std::string>(), host ? &*host : nullptr, false);
  if (!x) return fail(x.error());
  for (const auto& w : x->warnings) warn(w);
  GuestCpuidOptions opt;
  opt.enforce = vm.count("enforce") != 0;
  auto g = build_guest_cpuid(x->cpu, *smp, host ? &*host : nullptr, opt);
  if (!g) return fail(g.error());
  for (const auto& w : g->warnings) warn(w);
  auto which = chosen_vcpus(vm, *g);
  if (!which) return fail(which.error());
  print(format, *g, *which, x->cpu.model);
  return kExitOk;
}

void options(po::options_description& o, po::positional_options_description&) {
  o.add_options()("cpu", po::value<std::string>()->required(), "SPEC: MODEL[,+feat][,-feat][,feat=on|off]")(
      "smp", po::value<std::string>()->default_value("1"), "N[,maxcpus=M][,sockets=S][,dies=D][,cores=C][,threads=T]")(
      "host", po::value<std::string>(), "host profile: filter to what its KVM can give (warnings, like QEMU's check)")(
      "vcpu", po::value<unsigned>(), "the vCPU to print (default 0)")("all", "print every vCPU")(
      "enforce", "fail (exit 3) instead of dropping features the host lacks")(
      "format", po::value<std::string>()->default_value("table"), "table | json | cpuid-r | kvm")(
      "json", "same as --format json")(
      "models-dir", po::value<std::vector<std::string>>(), "extra directory of model YAML files");
}

const Registrar reg({"cpuid",
                     "cpuid --cpu SPEC [--smp SMP] [--host PROFILE] [--vcpu N | --all] [--enforce] "
                     "[--format table|json|cpuid-r|kvm]",
                     "the guest CPUID table(s) this toolkit would set",
                     "cpumodel cpuid -cpu Haswell-noTSX,-avx -smp 8,sockets=2,cores=2,threads=2 --vcpu 5 --format cpuid-r",
                     options, run});

}  // namespace
}  // namespace cpumodel::tools
