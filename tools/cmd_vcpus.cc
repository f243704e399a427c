// cpumodel vcpus --qmp unix:PATH [--json]: which host thread is which vCPU of a running VM
// (QMP query-cpus-fast; this VMM's or QEMU's), with the host CPU each thread last ran on and the
// CPUs it may run on -- what `ps -eLo lwp,psr` plus taskset tell an operator by hand.
#include <iostream>

#include "command.h"
#include "cpumodel/vmm/qmp.h"

namespace cpumodel::tools {
namespace {

int run(const po::variables_map& vm) {
  auto rows = vmm::query_vcpu_threads(vm["qmp"].as<std::string>());
  if (!rows) return fail(rows.error());
  std::cout << (vm.count("json") ? vmm::vcpu_threads_json(*rows) : vmm::format_vcpu_threads(*rows));
  return kExitOk;
}

void options(po::options_description& o, po::positional_options_description&) {
  o.add_options()("qmp", po::value<std::string>()->required(), "the VM's QMP socket: unix:PATH")(
      "json", "JSON output: vcpus[] of index, tid, socket, die, core, thread, qom_path, host_cpu, allowed");
}

const Registrar reg({"vcpus", "vcpus --qmp unix:PATH [--json]",
                     "the vCPU -> host thread map of a running VM, with the host CPU each last ran on",
                     "cpumodel vcpus --qmp unix:/tmp/vm.qmp", options, run});

}  // namespace
}  // namespace cpumodel::tools
