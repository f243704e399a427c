// Snapshots of a running Machine and machines restored from them.
//
//   snapshot_machine(m, path, info, then)   from any thread while m.run() runs (or before/after):
//       pause every vCPU at an instruction boundary, save the VM and vCPU state, write the memory
//       file and the snapshot (both atomically), then resume, or stop the machine.
//   restore_machine(path, options)          a new Machine whose vCPUs continue where they were;
//       guest memory is the memory file mapped MAP_PRIVATE (pages read on first touch).
#pragma once

#include <memory>
#include <string>

#include "cpumodel/cpuid/result.h"
#include "cpumodel/migrate/snapshot.h"
#include "cpumodel/vmm/cpuset.h"
#include "cpumodel/vmm/linux_vm.h"
#include "cpumodel/vmm/machine.h"

namespace cpumodel::vmm {

// What the header says about the guest (the Machine does not know its CPU spec or topology).
struct SnapshotInfo {
  std::string tool_version;
  std::string cpu_spec, cpu_model;
  std::string smp;                  // normalised -smp string
  unsigned cpus = 0, maxcpus = 0, sockets = 0, dies = 0, cores = 0, threads = 0;
  std::string guest;                // what runs ("probe", "determinism test", ...)
  std::string memory_path;          // default: PATH.mem
  bool durable = false;             // fdatasync the memory file before renaming it
};

enum class AfterSnapshot : uint8_t { kResume, kStop, kStayPaused };

struct SnapshotStats {
  double pause_ms = 0;              // until every vCPU was parked
  double state_ms = 0;              // vCPU + VM state through KVM
  double memory_ms = 0;             // checksum + write of the memory file
  double file_ms = 0;               // encode + write of the snapshot file
  double total_ms = 0;              // pause to resume/stop
  uint64_t memory_bytes = 0;
  uint64_t state_bytes = 0;
  std::vector<std::string> unsupported;  // what this KVM could not give (recorded in the file)
};

Result<SnapshotStats> snapshot_machine(Machine& machine, const std::string& path, const SnapshotInfo& info,
                                       AfterSnapshot then = AfterSnapshot::kResume);

// A Linux guest (`cpumodel boot`): the same, with the port devices' state and every RAM region
// (PATH.mem for the first, PATH.mem.1 for RAM above 4 GiB). `then` kStop ends the VM's run as a quit.
Result<SnapshotStats> snapshot_linux_vm(LinuxVm& vm, const std::string& path, const SnapshotInfo& info,
                                        AfterSnapshot then = AfterSnapshot::kResume);
// A LinuxVm resumed from `snapshot` (read from `path`): `config` gives the host side (device,
// pins, serial, timeout); places, RAM files and state come from the snapshot. verify_memory:
// XXH64 of every memory file first.
Result<std::unique_ptr<LinuxVm>> restore_linux_vm(const Snapshot& snapshot, const std::string& path,
                                                  LinuxVmConfig config, bool verify_memory);
// The vCPU places of a saved topology: the recorded -smp when it fits `vcpus`, else one socket
// of `vcpus` cores.
std::vector<VcpuPlace> saved_places(const std::string& smp, size_t vcpus);

struct RestoreOptions {
  std::string device = default_kvm_device();
  PinMap pins;                      // vCPU -> host CPUs (checked by the caller)
  double timeout_s = 0;             // <= 0: none
  bool verify_memory = true;        // XXH64 of the whole memory file before mapping it
  std::function<bool(unsigned index, kvm_run& run)> on_io;
  std::function<void(unsigned index, pid_t tid)> on_vcpu_exit;
};

struct Restored {
  std::unique_ptr<Machine> machine; // ready to run()
  SnapshotHeader header;
  double read_ms = 0;               // read + decode + checks of the snapshot file
  double verify_ms = 0;             // memory file checksum (0 when not verified)
  double create_ms = 0;             // VM, memory mapping, vCPU and VM state restored
};

Result<Restored> restore_machine(const std::string& path, const RestoreOptions& options);

// QMP commands for a running Machine (verify --hold, restore --qmp): query-status, stop, cont,
// quit, and snapshot-save {"path": FILE, "quit": false}: pause, write FILE (+ FILE.mem), then
// continue (or quit; a machine stopped with `stop` stays paused). Replies as QEMU 7.2 shapes them
// where QEMU has the command; snapshot-save returns {"path", "bytes", "memory-bytes", "ms",
// "unsupported"}. `info` fills the snapshot header.
class QmpServer;
void add_machine_qmp_commands(QmpServer& server, Machine& machine, const SnapshotInfo& info);
// snapshot-save for a Linux VM (boot --qmp, restore of a Linux guest), next to add_vm_qmp_commands'
// run control; with "quit" the VM's run ends as a QMP quit.
void add_linux_vm_snapshot_command(QmpServer& server, LinuxVm& vm, const SnapshotInfo& info);
// The same, from a snapshot already read (its memory file relative to `path`).
Result<Restored> restore_machine(const Snapshot& snapshot, const std::string& path, const RestoreOptions& options);

}  // namespace cpumodel::vmm
