// A Linux guest on KVM: RAM (split around the [3 GiB, 4 GiB) MMIO hole), the in-kernel irqchip
// (PIC, IOAPIC, LAPIC) and PIT, the port devices of devices.h, firmware tables (MP + ACPI,
// platform_tables.h) and the 64-bit boot protocol (linux_boot.h). vCPU 0 starts at the kernel's
// 64-bit entry; the others wait in KVM's in-kernel LAPIC for the guest's INIT/SIPI. One thread per
// vCPU ("vcpu N"), pinned when asked. Thread-safe control (pause, resume, quit, power button) for
// QMP. The run ends when the guest powers off (ACPI S5), resets (i8042, triple fault), on quit,
// on --timeout, or when a vCPU fails.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cpumodel/cpuid/guest_cpuid.h"
#include "cpumodel/cpuid/result.h"
#include "cpumodel/migrate/snapshot.h"
#include "cpumodel/vmm/cpuset.h"
#include "cpumodel/vmm/guest_memory.h"
#include "cpumodel/vmm/kvm.h"
#include "cpumodel/vmm/linux_boot.h"
#include "cpumodel/vmm/platform_tables.h"

namespace cpumodel::vmm {

struct LinuxVmConfig {
  std::string device = default_kvm_device();
  std::span<const uint8_t> kernel;   // bzImage bytes (kept by the caller until create() returns)
  std::string kernel_name = "kernel";
  std::span<const uint8_t> initrd;
  std::string initrd_name = "initrd";
  bool release_sources = false;      // see LinuxBootConfig::release_sources
  std::string cmdline;
  uint64_t ram_size = 256ull << 20;
  std::vector<VcpuPlace> places;     // from build_guest_cpuid: APIC IDs and topology
  std::vector<CpuidTable> tables;    // one per vCPU
  PinMap pins;
  int serial_out_fd = 1;             // -1: discard
  // Serial input: -1 for none, else read until EOF (a terminal is put in raw mode; Ctrl-A x quits).
  int serial_in_fd = -1;
  std::function<void(std::span<const uint8_t>)> serial_observer;  // each byte the guest sends
  double timeout_s = 0;              // <= 0: run until the guest ends
  // A backend that cannot run an unmodified kernel (kvm_pvm): if the guest has sent no byte to the
  // UART after this long, the run ends with an exit-3 error. 0 disables the watch.
  double pvm_watch_s = 0;
  // Called once from run() when every vCPU thread has started (the CLI drops its start-up code's
  // pages here: process_memory.h).
  std::function<void()> on_started;
  // Restore instead of boot (snapshots): no kernel is loaded and no table written. Guest RAM is
  // ram_files[i] (one per memory region of the snapshot's header, in order) mapped MAP_PRIVATE,
  // read lazily; the vCPUs, the irqchip, PIT, kvmclock and the port devices get the saved state.
  // `places` come from the saved topology; `tables` may be empty (each vCPU's saved CPUID is used).
  std::shared_ptr<const Snapshot> restore;
  std::vector<std::string> ram_files;
};

enum class LinuxVmEnd : uint8_t {
  kPowerOff,    // ACPI S5
  kReset,       // i8042 reset, triple fault
  kQuit,        // QMP quit, Ctrl-A x, request_quit()
  kTimeout,     // --timeout
  kFailed,      // a vCPU failed (KVM internal error, entry failure, ioctl error)
  kNoProgress,  // the pvm watch fired
};
const char* linux_vm_end_name(LinuxVmEnd e);  // "powered off", "rebooted", ...

struct LinuxVmResult {
  LinuxVmEnd end = LinuxVmEnd::kFailed;
  std::string what;        // one line: "the guest entered ACPI S5 (soft off)"
  std::string dump;        // register dump of the vCPU that failed
  double setup_ms = -1;    // process start to the vCPU threads' start (10 ms ticks; -1 unknown)
  double run_ms = 0;       // vCPU threads start to end
  double first_output_ms = -1;  // first byte the guest sent to the UART
  uint64_t serial_bytes = 0;
  uint64_t exits = 0;      // exits to user space, all vCPUs
  // Those exits by cause, most first: {"io 0x3f8 out", 812}, {"mmio 0xfed00000 read", 3}, ...
  std::vector<std::pair<std::string, uint64_t>> exit_causes;
  uint64_t peak_rss_kib = 0;     // VmHWM at the end
  uint64_t rss_anon_kib = 0;     // RssAnon at the end: heap, stacks and guest RAM
  uint64_t rss_file_kib = 0;     // RssFile + RssShmem at the end: the executable and shared libraries
  uint64_t guest_resident_kib = 0;  // guest RAM pages resident at the end (mincore)
  uint64_t guest_ram_kib = 0;
  // The exit code of ../shared/CLI.md for this end: 0 powered off / rebooted / quit, 1 timeout or
  // failure, 3 no progress.
  int exit_code() const;
};

struct VcpuThreadInfo {
  VcpuPlace place;
  pid_t tid = 0;           // 0 until the thread started
  int host_cpu = -1;       // where it last ran
  bool pinned = false;
  CpuSet allowed;
};
// A vCPU thread as /proc and the scheduler see it now (host CPU, affinity); tid 0: not started.
VcpuThreadInfo vcpu_thread_info(const VcpuPlace& place, pid_t tid, bool pinned);

class LinuxVm {
 public:
  // Opens KVM, creates the VM, irqchip, PIT, RAM, vCPUs with their CPUID; loads the kernel and
  // writes the boot tables. Exit 2 for bad input (kernel, sizes, pins), 3 for the host.
  static Result<std::unique_ptr<LinuxVm>> create(LinuxVmConfig config);
  ~LinuxVm();
  LinuxVm(const LinuxVm&) = delete;
  LinuxVm& operator=(const LinuxVm&) = delete;

  Backend backend() const;
  const LinuxBootPlan& boot_plan() const;
  const GuestMemory& low_memory() const;
  // Runs until the guest ends (once).
  Result<LinuxVmResult> run();
  // Replaces LinuxVmConfig::on_started (before run()).
  void set_on_started(std::function<void()> f);

  // Control, from any thread while run() runs.
  void pause();               // returns when every vCPU has left KVM_RUN and waits
  void resume();
  bool paused() const;
  void request_quit(const std::string& why);
  void press_power_button();  // ACPI power button (the guest decides what to do)
  std::vector<VcpuThreadInfo> vcpu_threads() const;

  // Snapshots (snapshot.h): the VM's, every vCPU's and the port devices' state, only while
  // paused (or before run()); guest RAM regions, low first; the KVM it runs on.
  Result<MachineState> save_state();
  std::vector<const GuestMemory*> memory() const;
  const Kvm& kvm() const;

 private:
  struct Impl;
  explicit LinuxVm(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The vCPUs as the firmware tables describe them: APIC IDs, and the CPUID facts the MP table
// repeats (signature 01H:EAX, features 01H:EDX).
PlatformConfig platform_config(const std::vector<VcpuPlace>& places, const std::vector<CpuidTable>& tables);

// Adds the VM's QMP commands to `server`: query-status, query-cpus-fast, stop, cont,
// system_powerdown, quit (with QEMU 7.2's reply shapes and STOP/RESUME/POWERDOWN events).
class QmpServer;
void add_vm_qmp_commands(QmpServer& server, LinuxVm& vm);
// query-cpus-fast's reply for these threads (cpu-index, thread-id, props, qom-path, target).
std::string cpus_fast_json(const std::vector<VcpuThreadInfo>& threads);

}  // namespace cpumodel::vmm
