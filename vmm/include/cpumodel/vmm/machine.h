// A VM that runs a small payload on N vCPUs, one OS thread per vCPU named "vcpu N". Each vCPU
// enters directly in 64-bit long mode (or 32-bit protected mode) at BootLayout::kCode with the
// registers given. A vCPU ends when the guest writes to CPUMODEL_DONE_PORT; a vCPU that faults
// (triple fault, internal error, unexpected exit, access to unmapped memory) ends the whole VM
// with a register dump; --timeout kicks every vCPU out (signal + immediate_exit).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cpumodel/cpuid/result.h"
#include "cpumodel/cpuid/table.h"
#include "cpumodel/migrate/snapshot.h"
#include "cpumodel/vmm/cpuset.h"
#include "cpumodel/vmm/guest_memory.h"
#include "cpumodel/vmm/kvm.h"
#include "cpumodel/vmm/x86_boot.h"

namespace cpumodel::vmm {

struct VcpuConfig {
  uint32_t apic_id = 0;            // KVM vCPU id
  std::optional<CpuidTable> cpuid; // KVM_SET_CPUID2 before the registers are set
  std::optional<CpuSet> pin;       // sched_setaffinity inside the vCPU thread
  uint64_t rip = BootLayout::kCode;
  uint64_t rsp = 0, rdi = 0, rsi = 0, rdx = 0, rbp = 0;
};

// The part of a Machine that needs no CPUID table: /dev/kvm open, the VM created with its TSS and
// identity map, RAM mapped and the vCPUs created. Made ahead, on another thread, while the tables
// are still being built (`cpumodel verify`); Machine::create adopts it when device, RAM size, vCPU
// APIC IDs and irqchip are what its config asks, and otherwise drops it and starts afresh.
struct PreparedVm;
Result<std::shared_ptr<PreparedVm>> prepare_vm(const std::string& device, uint64_t ram_size,
                                               std::vector<uint32_t> apic_ids, bool irqchip);

struct MachineConfig {
  std::string device = default_kvm_device();
  uint64_t ram_size = 2ull << 20;  // one memslot at guest-physical 0
  CpuMode mode = CpuMode::kLong64;
  double timeout_s = 10;           // <= 0: no timeout
  // In-kernel PIC/IOAPIC/LAPIC when the backend has one. Creating it costs ~10 ms of RCU grace
  // periods on create and destroy; a guest that takes no interrupts (the probe) does without:
  // the VMM then sets each vCPU's APIC base MSR itself (enabled, BSP for APIC ID 0).
  bool irqchip = true;
  std::vector<VcpuConfig> vcpus;
  // Called in each vCPU thread just before it ends (tests inspect /proc/self/task/TID here).
  std::function<void(unsigned index, pid_t tid)> on_vcpu_exit;
  // An `out` or `in` to a port this VMM does not own (any but CPUMODEL_DONE_PORT) goes here, in
  // the vCPU thread; false ends the VM as an unexpected exit. For `in`, write the data into the
  // kvm_run page at run.io.data_offset.
  std::function<bool(unsigned index, kvm_run& run)> on_io;
  // Restore instead of boot (snapshots): guest RAM is `ram_file` mapped MAP_PRIVATE (read lazily,
  // writes stay private) when set, no boot table is written, and vCPU i and the VM get the state
  // in `restore` instead of boot registers. `irqchip` must match the saved VM's.
  std::string ram_file;
  std::shared_ptr<const MachineState> restore;
  std::shared_ptr<PreparedVm> prepared;  // prepare_vm's, adopted when it fits (not with restore)
};

enum class VcpuEnd : uint8_t {
  kDone,            // wrote to the done port
  kShutdown,        // triple fault
  kInternalError,   // KVM_EXIT_INTERNAL_ERROR
  kFailEntry,       // KVM_EXIT_FAIL_ENTRY
  kUnmappedMemory,  // KVM_EXIT_MMIO: an access outside guest RAM
  kUnexpectedExit,  // any other exit (I/O to another port, hlt, ...)
  kTimeout,         // kicked out by --timeout
  kStopped,         // kicked out because another vCPU faulted
  kError,           // an ioctl failed
};
const char* vcpu_end_name(VcpuEnd e);

struct VcpuReport {
  unsigned index = 0;
  uint32_t apic_id = 0;
  pid_t tid = 0;
  int last_cpu = -1;       // /proc/self/task/TID/stat field 39 at the end
  CpuSet allowed;          // the thread's affinity (pinned set, or the process's)
  bool pinned = false;
  VcpuEnd end = VcpuEnd::kError;
  std::string what;        // one line: "triple fault (KVM_EXIT_SHUTDOWN)"
  std::string dump;        // register dump when it faulted or timed out
  uint32_t done_value = 0; // what the guest wrote to the done port
  uint64_t exits = 0;      // exits to user space
  // State at the end, for CPUID bits that follow it (OSXSAVE, OSPKE, APIC, XSAVE sizes).
  uint64_t cr4 = 0, xcr0 = 1, apic_base = 0;
};

struct MachineReport {
  Backend backend = Backend::kUnknown;
  bool irqchip = false;
  bool prepared_ahead = false;  // the VM was MachineConfig::prepared (prepare_vm), adopted
  CpuMode mode = CpuMode::kLong64;
  bool timed_out = false;
  double run_ms = 0;       // from starting the threads to joining them
  std::vector<VcpuReport> vcpus;
  bool all_done() const;
  // "vCPU 1: triple fault (KVM_EXIT_SHUTDOWN)" for the first vCPU that did not finish, or "".
  std::string failure() const;
};

class Machine {
 public:
  // Opens KVM, creates the VM, RAM, irqchip and vCPUs, sets CPUID and registers, writes the boot tables.
  static Result<std::unique_ptr<Machine>> create(MachineConfig config);
  ~Machine();
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  const GuestMemory& memory() const;  // load the payload here before run()
  Backend backend() const;
  Status load_code(std::span<const uint8_t> code);  // at BootLayout::kCode
  // Runs every vCPU to the end. Once per Machine.
  Result<MachineReport> run();

  // From another thread while run() runs (snapshots, QMP stop/cont/quit). pause() kicks every vCPU
  // out of KVM_RUN (signal + immediate_exit), lets KVM complete a pending I/O instruction, and
  // returns once each vCPU is parked or has ended; they stay parked until resume() or stop().
  Status pause();
  void resume();
  // Ends run(): every vCPU that has not ended ends with VcpuEnd::kStopped.
  void stop();
  bool paused() const;
  // Each vCPU's thread id (0 before its thread started) and whether it is pinned, in index order;
  // from any thread.
  std::vector<std::pair<pid_t, bool>> vcpu_tids() const;
  // The VM's and every vCPU's state (vcpu_state.h); only while paused, before run() or after it.
  Result<MachineState> save_state();
  const Kvm& kvm() const;
  CpuMode mode() const;

 private:
  struct Impl;
  explicit Machine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Destroys machines on a thread of its own, so that the caller can go on (compare, print) while
// KVM tears each VM down: ~0.4 ms per VM on kvm_pvm (static-key text patching for its vCPUs,
// debugfs). Its destructor waits for every one, so no VM outlives it. One owner thread; when no
// thread can be started, the machine is destroyed in the caller.
class Teardown {
 public:
  Teardown() = default;
  ~Teardown();
  Teardown(const Teardown&) = delete;
  Teardown& operator=(const Teardown&) = delete;
  void dispose(std::unique_ptr<Machine> machine);
  void wait();  // every machine given so far is destroyed when this returns

 private:
  std::vector<std::thread> threads_;
};

// Multi-line register dump (RIP, RSP, GPRs, CR0/CR3/CR4/EFER, CS) of one vCPU.
std::string register_dump(const kvm_regs& r, const kvm_sregs& s);

// The vCPU map, one line per vCPU: vCPU, TID, APIC ID, pinned set, CPU it last ran on.
// (socket/core/thread are added by callers that know the topology.)

}  // namespace cpumodel::vmm
