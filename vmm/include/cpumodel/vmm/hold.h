// `verify --hold`: after the probe, keep the guest running a deterministic computation on every
// vCPU (vmm/src/hold_guest.S; vCPU 0 prints its running checksum on COM1) until QMP quit or the
// timeout, with the machine's QMP commands (snapshot.h: query-status, stop, cont, quit,
// snapshot-save). A snapshot of it resumes with `cpumodel restore` and prints the same sequence.
#pragma once

#include <string>

#include "cpumodel/cpuid/guest_cpuid.h"
#include "cpumodel/cpuid/result.h"
#include "cpumodel/vmm/cpuset.h"
#include "cpumodel/vmm/machine.h"
#include "cpumodel/vmm/snapshot.h"

namespace cpumodel::vmm {

struct HoldOptions {
  std::string device = default_kvm_device();
  PinMap pins;
  std::string qmp;              // "unix:PATH"; empty: no QMP server
  double timeout_s = 0;         // <= 0: until QMP quit
  uint64_t iterations = 0;      // per vCPU; 0: forever
  int serial_fd = 1;            // COM1 output (-1: discard)
  SnapshotInfo info;            // the snapshot header's CPU spec, model and topology
};

// The guest's machine code and the port handler the hold guest (and a restored one) needs: COM1
// transmit to `serial_fd`, line status "empty".
std::span<const uint8_t> hold_guest_code();
bool hold_serial_io(int serial_fd, kvm_run& run);

// Runs until every vCPU ends (QMP quit, timeout, iterations done). Exit 2 for a 32-bit model.
Result<MachineReport> run_hold(const GuestCpuid& guest, const HoldOptions& options);

}  // namespace cpumodel::vmm
