// cpumodel qmp --qmp unix:PATH COMMAND [--arguments JSON]: one QMP command against a running VM
// (this VMM's or QEMU's), printing the "return" value -- what `virsh qemu-monitor-command` does.
#include <iostream>

#include "command.h"
#include "cpumodel/vmm/qmp.h"

namespace cpumodel::tools {
namespace {

int run(const po::variables_map& vm) {
  std::string args = vm.count("arguments") ? vm["arguments"].as<std::string>() : "";
  if (!args.empty())
    if (auto a = vmm::parse_json(args); !a || !a->is_object())
      return fail("--arguments: " + (a ? std::string("not a JSON object") : a.error().message));
  auto r = vmm::qmp_execute(vm["qmp"].as<std::string>(), vm["command"].as<std::string>(), args,
                            vm["timeout"].as<double>());
  if (!r) return fail(r.error());
  std::cout << r->dump() << "\n";
  return kExitOk;
}

void options(po::options_description& o, po::positional_options_description& pos) {
  o.add_options()("qmp", po::value<std::string>()->required(), "the VM's QMP socket: unix:PATH")(
      "command", po::value<std::string>()->required(), "the QMP command (query-status, stop, cont, quit, ...)")(
      "arguments", po::value<std::string>(), "its arguments, a JSON object")(
      "timeout", po::value<double>()->default_value(10.0), "seconds to wait for the answer");
  pos.add("command", 1);
}

const Registrar reg({"qmp", "qmp --qmp unix:PATH COMMAND [--arguments JSON]",
                     "send one QMP command to a running VM and print its answer",
                     "cpumodel qmp --qmp unix:/tmp/vm.qmp query-status", options, run});

}  // namespace
}  // namespace cpumodel::tools
