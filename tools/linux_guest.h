// What `boot` and `restore` share for Linux guests: the --serial setting, and running the VM to
// its end with QMP (run control, snapshot-save), a SHUTDOWN event and the exit code of CLI.md;
// and the snapshot header facts every guest-running command (verify --hold too) records.
#pragma once

#include <string>

#include "cpumodel/cpuid/result.h"
#include "cpumodel/cpuid/smp.h"
#include "cpumodel/vmm/linux_vm.h"
#include "cpumodel/vmm/qmp.h"
#include "cpumodel/vmm/snapshot.h"

namespace cpumodel::tools {

struct SerialSetup {
  int out_fd = 1;
  int in_fd = 0;
  bool owned = false;  // out_fd is a file opened here
};
// stdio | file:PATH | none
Result<SerialSetup> serial_setup(const std::string& spec);

// The snapshot header's facts about a guest of this CPU and topology (what `restore` reads back).
vmm::SnapshotInfo snapshot_info(const std::string& spec, const std::string& model, const SmpConfig& smp,
                                const std::string& guest);

// Runs `vm` until it ends. With `qmp`: the VM's commands and snapshot-save (header from `info`),
// then SHUTDOWN at the end; once the vCPU threads run, the start-up code's pages are dropped
// (process_memory.h). `stats`: run time and memory on stderr. Returns the exit code.
int run_linux_guest(vmm::LinuxVm& vm, vmm::QmpServer* qmp, const vmm::SnapshotInfo& info, bool stats);

}  // namespace cpumodel::tools
