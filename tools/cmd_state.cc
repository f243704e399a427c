// cpumodel state inspect SNAPSHOT [--json]: what a snapshot holds (cpumodel::migrate snapshot codec).
#include <iostream>

#include "command.h"
#include "cpumodel/migrate/snapshot.h"

namespace cpumodel::tools {
namespace {

int run(const po::variables_map& vm) {
  auto args = vm.count("args") ? vm["args"].as<std::vector<std::string>>() : std::vector<std::string>{};
  if (args.empty()) return fail("state: expected an action: state inspect SNAPSHOT [--json]");
  if (args[0] != "inspect") return fail("state: unknown action '" + args[0] + "' (the action is: inspect)");
  if (args.size() != 2) return fail("state inspect: expected one SNAPSHOT, got " + std::to_string(args.size() - 1));
  auto snap = read_snapshot(args[1]);
  if (!snap) return fail(snap.error());
  std::cout << (vm.count("json") ? snapshot_json(*snap) : "snapshot " + args[1] + ": " + snapshot_text(*snap));
  if (vm.count("verify-memory"))
    if (auto st = verify_memory_file(args[1], snap->header.memory, true); !st) return fail(st.error());
  return kExitOk;
}

void options(po::options_description& o, po::positional_options_description& pos) {
  o.add_options()("args", po::value<std::vector<std::string>>()->value_name("inspect SNAPSHOT"), "action and snapshot")(
      "json", "JSON output: header, source host, memory, vm, vcpus[] of index, apic_id, mode, mp_state, rip, xcr0, "
              "xcr0_components, msr_count, cpuid")(
      "verify-memory", "also check the memory file's size and XXH64 checksum (exit 2 when they do not match)");
  pos.add("args", -1);
}

const Registrar reg({"state", "state inspect SNAPSHOT [--json] [--verify-memory]",
                     "what a snapshot holds: per vCPU mode, RIP, XCR0 components, MSRs, CPUID",
                     "cpumodel state inspect guest.snap --json", options, run});

}  // namespace
}  // namespace cpumodel::tools
