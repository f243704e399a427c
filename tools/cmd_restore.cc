// cpumodel restore SNAPSHOT [--pin V:C,...] [--qmp unix:PATH] [--timeout S] [--no-verify-memory]:
// resumes a saved guest in this process (cpumodel::vmm restore_machine); the guest continues where
// it was. Its COM1 output goes to stdout; the test guests' checkpoint port (0xCF0) prints one line
// per value ("vcpu N: 0x12345678"), and a vCPU that ends prints "vcpu N: done 0x...".
#include <cstdio>
#include <cstring>
#include <iostream>
#include <mutex>

#include "command.h"
#include "cpumodel/vmm/cpuset.h"
#include "cpumodel/vmm/guest_abi.h"
#include "cpumodel/vmm/hold.h"
#include "cpumodel/vmm/qmp.h"
#include "cpumodel/vmm/snapshot.h"

namespace cpumodel::tools {
namespace {

constexpr uint16_t kCheckpointPort = 0x0cf0;

// The ports a restored guest may use: COM1 (hold.h: transmit to stdout, line status "empty"), and
// the checkpoint port of the test guests. Anything else ends the run as an unexpected exit.
bool handle_io(unsigned index, kvm_run& run) {
  static std::mutex mu;
  if (vmm::hold_serial_io(1, run)) return true;
  if (run.io.port == kCheckpointPort && run.io.direction == KVM_EXIT_IO_OUT && run.io.size == 4) {
    uint32_t v;
    std::memcpy(&v, reinterpret_cast<uint8_t*>(&run) + run.io.data_offset, 4);
    std::lock_guard<std::mutex> lock(mu);
    std::printf("vcpu %u: 0x%08x\n", index, v);
    std::fflush(stdout);
    return true;
  }
  return false;
}

int run(const po::variables_map& vm) {
  auto args = vm.count("args") ? vm["args"].as<std::vector<std::string>>() : std::vector<std::string>{};
  if (args.size() != 1) return fail("restore: expected one SNAPSHOT (see 'cpumodel restore --help')");
  const std::string& path = args[0];
  auto snap = read_snapshot(path);
  if (!snap) return fail(snap.error());
  vmm::RestoreOptions o;
  if (vm.count("kvm-device")) o.device = vm["kvm-device"].as<std::string>();
  o.timeout_s = vm["timeout"].as<double>();
  o.verify_memory = !vm.count("no-verify-memory");
  o.on_io = handle_io;
  if (vm.count("pin")) {
    auto pins = vmm::parse_pin_map(vm["pin"].as<std::string>());
    if (!pins) return fail(pins.error());
    o.pins = std::move(*pins);
  }
  if (auto st = vmm::check_pin_map(o.pins, static_cast<unsigned>(snap->state.vcpus.size())); !st) return fail(st.error());
  auto restored = vmm::restore_machine(*snap, path, o);
  if (!restored) return fail(restored.error());
  std::unique_ptr<vmm::QmpServer> qmp;
  if (vm.count("qmp")) {
    auto server = vmm::QmpServer::listen(vm["qmp"].as<std::string>());
    if (!server) return fail(server.error());
    qmp = std::move(*server);
    vmm::SnapshotInfo info;
    info.tool_version = CPUMODEL_VERSION;
    info.cpu_spec = snap->header.cpu_spec;
    info.cpu_model = snap->header.cpu_model;
    info.smp = snap->header.smp;
    info.cpus = snap->header.cpus;
    // The whole topology, so a snapshot taken of the restored guest records it as the first did
    // (query-cpus-fast places the vCPUs by `smp`).
    info.maxcpus = snap->header.maxcpus;
    info.sockets = snap->header.sockets;
    info.dies = snap->header.dies;
    info.cores = snap->header.cores;
    info.threads = snap->header.threads;
    info.guest = snap->header.guest;
    vmm::add_machine_qmp_commands(*qmp, *restored->machine, info);
    qmp->start();
  }
  if (stderr_is_tty())
    note("restored " + path + " (" + std::to_string(snap->state.vcpus.size()) + " vCPUs) in " +
         std::to_string(static_cast<int>(restored->read_ms + restored->verify_ms + restored->create_ms)) + " ms");
  auto report = restored->machine->run();
  if (!report) return fail(report.error());
  for (const auto& v : report->vcpus)
    if (v.end == vmm::VcpuEnd::kDone) std::printf("vcpu %u: done 0x%08x\n", v.index, v.done_value);
  bool quit = !report->vcpus.empty() && report->vcpus[0].what == "stopped on request";
  if (report->all_done() || quit) return kExitOk;
  return fail("restore: " + report->failure() + (report->timed_out ? " (timeout)" : ""), kExitNegative);
}

void options(po::options_description& o, po::positional_options_description& pos) {
  o.add_options()("args", po::value<std::vector<std::string>>()->value_name("SNAPSHOT"), "the snapshot file")(
      "pin", po::value<std::string>(), "pin vCPU threads: VCPU:CPUS,... (e.g. 0:2,1:3)")(
      "qmp", po::value<std::string>(), "QMP server on unix:PATH (query-status, stop, cont, quit, snapshot-save)")(
      "timeout", po::value<double>()->default_value(0), "seconds before the vCPUs are kicked out (0: none)")(
      "no-verify-memory", "map the memory file without checking its XXH64 first (faster for large guests)")(
      "kvm-device", po::value<std::string>(), "KVM device (default $CPUMODEL_KVM_DEVICE or /dev/kvm)");
  pos.add("args", -1);
}

const Registrar reg({"restore", "restore SNAPSHOT [--pin V:C,...] [--qmp unix:PATH] [--timeout S] [--no-verify-memory]",
                     "resume a saved guest where it was", "cpumodel restore guest.snap --qmp unix:/tmp/guest.qmp",
                     options, run});

}  // namespace
}  // namespace cpumodel::tools
