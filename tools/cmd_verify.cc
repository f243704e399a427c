// cpumodel verify --cpu SPEC [--smp SMP] [--pin V:C,...] [--affinity CPUS] [--json] [--timeout S]:
// builds the guest CPUID tables as `cpumodel cpuid` does (filtered by this host's KVM, as QEMU's
// default `check`), runs the probe guest on every vCPU and compares what each vCPU saw.
#include <future>
#include <iostream>

#include "command.h"
#include "linux_guest.h"
#include "cpumodel/cpuid/guest_cpuid.h"
#include "cpumodel/cpuid/host_probe.h"
#include "cpumodel/models/catalog.h"
#include "cpumodel/vmm/cpuset.h"
#include "cpumodel/vmm/hold.h"
#include "cpumodel/vmm/verify.h"

namespace cpumodel::tools {
namespace {

Result<vmm::VerifyOptions> verify_options(const po::variables_map& vm) {
  vmm::VerifyOptions o;
  o.device = vm.count("kvm-device") ? vm["kvm-device"].as<std::string>() : vmm::default_kvm_device();
  o.timeout_s = vm["timeout"].as<double>();
  if (!(o.timeout_s > 0)) return input_error("--timeout must be a positive number of seconds");
  if (vm.count("pin")) {
    auto pins = vmm::parse_pin_map(vm["pin"].as<std::string>());
    if (!pins) return pins.error();
    o.pins = std::move(*pins);
  }
  return o;
}

// --hold: keep the guest computing (vCPU 0's running checksum on stdout) until QMP quit (hold.h);
// QMP snapshot-save writes a snapshot that `cpumodel restore` resumes.
int hold(const po::variables_map& vm, const GuestCpuid& guest, const vmm::VerifyOptions& options,
         const std::string& model, const SmpConfig& smp, bool identical) {
  std::cout.flush();
  vmm::HoldOptions h;
  h.device = options.device;
  h.pins = options.pins;
  if (vm.count("qmp")) h.qmp = vm["qmp"].as<std::string>();
  h.info = snapshot_info(vm["cpu"].as<std::string>(), model, smp, "");  // run_hold names the guest
  auto held = vmm::run_hold(guest, h);
  if (!held) return fail(held.error());
  bool quit = !held->vcpus.empty() && held->vcpus[0].what == "stopped on request";
  if (!held->all_done() && !quit) return fail("verify --hold: " + held->failure(), kExitNegative);
  return identical ? kExitOk : kExitNegative;
}

int run(const po::variables_map& vm) {
  auto smp = parse_smp(vm["smp"].as<std::string>());
  if (!smp) return fail(smp.error());
  auto options = verify_options(vm);
  if (!options) return fail(options.error());
  if (vm.count("affinity")) {
    auto cpus = vmm::CpuSet::parse(vm["affinity"].as<std::string>(), "--affinity");
    if (!cpus) return fail(cpus.error());
    if (auto st = vmm::apply_affinity(*cpus); !st) return fail(st.error());
  }
  if (auto st = vmm::check_pin_map(options->pins, smp->cpus); !st) return fail(st.error());
  if (vm.count("qmp") && !vm.count("hold")) return fail("verify: --qmp goes with --hold");
  // The probe VM with its vCPUs, which need no CPUID table, is made on a second thread (~0.5 ms
  // here), while this one reads the host's CPUID, asks KVM what it supports, loads the catalog
  // and builds the tables (~0.2, ~0.2, ~0.3 and ~0.1 ms, cold). A VM that does not fit them in
  // the end (a model with more than 256 queries) is dropped and made again, and a failure making
  // it ahead is left for the profile, or the making again, to report. (A third thread was no
  // faster on 2 CPUs.)
  std::vector<uint32_t> apic_ids;
  for (unsigned i = 0; i < smp->cpus; ++i) apic_ids.push_back(apic_id_of(*smp, i));
  std::shared_ptr<vmm::PreparedVm> prepared;
  std::future<void> vm_ahead;
  if (!vm.count("hold"))
    vm_ahead = std::async(std::launch::async, [&] {
      if (auto p = vmm::prepare_vm(options->device, vmm::probe_ram_size(smp->cpus), apic_ids, false)) prepared = *p;
    });
  vmm::Teardown teardown;  // the probe VM is destroyed there while this thread compares and prints
  CpuidTable host_cpuid = enumerate_cpuid(HostCpuidSource());
  auto host = vmm::kvm_support_profile(options->device);
  auto dirs = vm.count("models-dir") ? vm["models-dir"].as<std::vector<std::string>>() : std::vector<std::string>{};
  if (!host) return fail(host.error());
  auto cat = Catalog::load_default(dirs);
  if (!cat) return fail(cat.error());
  host->cpuid = std::move(host_cpuid);
  auto x = cat->expand(vm["cpu"].as<std::string>(), &*host, false);
  if (!x) return fail(x.error());
  for (const auto& w : x->warnings) warn(w);
  auto guest = build_guest_cpuid(x->cpu, *smp, &*host, {});
  if (!guest) return fail(guest.error());
  for (const auto& w : guest->warnings) warn(w);
  options->host_cpuid = &host->cpuid;  // read once (above), not again per probed leaf
  if (vm_ahead.valid()) vm_ahead.get();  // (an early return above waits in its destructor)
  options->prepared = std::move(prepared);
  options->teardown = &teardown;
  auto report = vmm::verify_guest(*guest, *options);
  if (!report) return fail(report.error());
  if (vm.count("json"))
    std::cout << vmm::verify_json(*report, x->cpu.model);
  else
    std::cout << vmm::format_verify(*report, x->cpu.model + " -smp " + format_smp(*smp));
  if (vm.count("hold")) return hold(vm, *guest, *options, x->cpu.model, *smp, report->identical);
  return report->identical ? kExitOk : kExitNegative;
}

void options(po::options_description& o, po::positional_options_description&) {
  o.add_options()("cpu", po::value<std::string>()->required(), "SPEC: MODEL[,+feat][,-feat][,feat=on|off]")(
      "smp", po::value<std::string>()->default_value("1"), "N[,maxcpus=M][,sockets=S][,dies=D][,cores=C][,threads=T]")(
      "pin", po::value<std::string>(), "pin vCPU threads: VCPU:CPUS,... (e.g. 0:2,1:3 or 0:2-3)")(
      "affinity", po::value<std::string>(), "confine the whole VMM to these host CPUs (e.g. 0-3)")(
      "timeout", po::value<double>()->default_value(10.0), "seconds before the vCPUs are kicked out")(
      "json", "JSON output (CLI.md: backend, identical, vcpus[].differences[])")(
      "hold", "then keep the guest computing (vCPU 0's running checksum on stdout) until QMP quit")(
      "qmp", po::value<std::string>(), "with --hold: QMP on unix:PATH (query-status, stop, cont, quit, snapshot-save)")(
      "kvm-device", po::value<std::string>(), "KVM device (default $CPUMODEL_KVM_DEVICE or /dev/kvm)")(
      "models-dir", po::value<std::vector<std::string>>(), "extra directory of model YAML files");
}

const Registrar reg({"verify",
                     "verify --cpu SPEC [--smp SMP] [--pin V:C,...] [--affinity CPUS] [--json] [--timeout S] "
                     "[--hold [--qmp unix:PATH]]",
                     "run the probe guest on every vCPU; seen vs intended CPUID",
                     "cpumodel verify -cpu Haswell,+aes,-avx -smp 4,sockets=2,cores=2 --pin 0:0,1:1",
                     options, run});

}  // namespace
}  // namespace cpumodel::tools
