// cpumodel restore SNAPSHOT [--pin V:C,...] [--qmp unix:PATH] [--timeout S] [--no-verify-memory]
//   [--serial stdio|file:PATH|none]:
// resumes a saved guest in this process; the guest continues where it was.
// - A Linux guest (saved from `boot`; its snapshot has port device state): restore_linux_vm, with
//   the UART, i8042, CMOS and ACPI PM as they were; stdin is typed into its console as in `boot`.
// - A probe-style guest (`verify --hold`, tests): restore_machine. Its COM1 output goes to stdout;
//   the test guests' checkpoint port (0xCF0) prints one line per value ("vcpu N: 0x12345678"), and
//   a vCPU that ends prints "vcpu N: done 0x...".
#include <cstdio>
#include <cstring>
#include <iostream>
#include <mutex>

#include <unistd.h>

#include "command.h"
#include "linux_guest.h"
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

// The header of a snapshot taken of the restored guest records the whole topology as the first
// did (query-cpus-fast places the vCPUs by `smp`).
vmm::SnapshotInfo info_of(const SnapshotHeader& h) {
  SmpConfig smp;
  smp.cpus = h.cpus;
  smp.maxcpus = h.maxcpus;
  smp.sockets = h.sockets;
  smp.dies = h.dies;
  smp.cores = h.cores;
  smp.threads = h.threads;
  vmm::SnapshotInfo info = snapshot_info(h.cpu_spec, h.cpu_model, smp, h.guest);
  info.smp = h.smp;  // as recorded
  return info;
}

// A Linux guest (the snapshot has port device state): its UART on --serial, stdin typed into it,
// the Linux VM's QMP, and the exit codes of `boot`.
int restore_linux(const po::variables_map& vm, const Snapshot& snap, const std::string& path) {
  auto serial = serial_setup(vm["serial"].as<std::string>());
  if (!serial) return fail(serial.error());
  vmm::LinuxVmConfig c;
  if (vm.count("kvm-device")) c.device = vm["kvm-device"].as<std::string>();
  c.timeout_s = vm["timeout"].as<double>();
  c.serial_out_fd = serial->out_fd;
  c.serial_in_fd = serial->in_fd;
  if (vm.count("pin")) {
    auto pins = vmm::parse_pin_map(vm["pin"].as<std::string>());
    if (!pins) return fail(pins.error());
    c.pins = std::move(*pins);
  }
  auto restored = vmm::restore_linux_vm(snap, path, std::move(c), !vm.count("no-verify-memory"));
  if (!restored) return fail(restored.error());
  // The socket appears once the guest is ready to answer (as for the probe guests below).
  std::unique_ptr<vmm::QmpServer> qmp;
  if (vm.count("qmp")) {
    auto server = vmm::QmpServer::listen(vm["qmp"].as<std::string>());
    if (!server) return fail(server.error());
    qmp = std::move(*server);
  }
  int code = run_linux_guest(**restored, qmp.get(), info_of(snap.header), vm.count("stats") > 0);
  if (serial->owned) ::close(serial->out_fd);
  return code;
}

int run(const po::variables_map& vm) {
  auto args = vm.count("args") ? vm["args"].as<std::vector<std::string>>() : std::vector<std::string>{};
  if (args.size() != 1) return fail("restore: expected one SNAPSHOT (see 'cpumodel restore --help')");
  const std::string& path = args[0];
  auto snap = read_snapshot(path);
  if (!snap) return fail(snap.error());
  if (snap->state.devices) return restore_linux(vm, *snap, path);
  if (vm["serial"].as<std::string>() != "stdio")
    return fail("restore: --serial is for Linux guests; this snapshot is of a " + snap->header.guest + " guest");
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
    vmm::add_machine_qmp_commands(*qmp, *restored->machine, info_of(snap->header));
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
  int rc = fail("restore: " + report->failure() + (report->timed_out ? " (timeout)" : ""), kExitNegative);
  // The registers of the vCPUs that faulted follow the one-line error, indented.
  for (const auto& v : report->vcpus)
    if (!v.dump.empty() && v.end != vmm::VcpuEnd::kStopped && v.end != vmm::VcpuEnd::kDone)
      std::fprintf(stderr, "  vCPU %u:\n%s", v.index, v.dump.c_str());
  return rc;
}

void options(po::options_description& o, po::positional_options_description& pos) {
  o.add_options()("args", po::value<std::vector<std::string>>()->value_name("SNAPSHOT"), "the snapshot file")(
      "pin", po::value<std::string>(), "pin vCPU threads: VCPU:CPUS,... (e.g. 0:2,1:3)")(
      "qmp", po::value<std::string>(), "QMP server on unix:PATH (query-status, stop, cont, quit, snapshot-save)")(
      "timeout", po::value<double>()->default_value(0), "seconds before the vCPUs are kicked out (0: none)")(
      "serial", po::value<std::string>()->default_value("stdio"),
      "a Linux guest's UART: stdio (a terminal goes raw; Ctrl-A x quits), file:PATH (output only), none")(
      "stats", "a Linux guest: print run time and the VMM's memory overhead on stderr at the end")(
      "no-verify-memory", "map the memory file without checking its XXH64 first (faster for large guests)")(
      "kvm-device", po::value<std::string>(), "KVM device (default $CPUMODEL_KVM_DEVICE or /dev/kvm)");
  pos.add("args", -1);
}

const Registrar reg({"restore",
                     "restore SNAPSHOT [--pin V:C,...] [--qmp unix:PATH] [--timeout S] [--no-verify-memory] "
                     "[--serial stdio|file:PATH|none]",
                     "resume a saved guest where it was", "cpumodel restore guest.snap --qmp unix:/tmp/guest.qmp",
                     options, run});

}  // namespace
}  // namespace cpumodel::tools
