#include "cpumodel/vmm/linux_vm.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>

#include "cpumodel/vmm/devices.h"
#include "cpumodel/vmm/machine.h"
#include "cpumodel/vmm/platform_tables.h"
#include "cpumodel/vmm/vcpu_state.h"
#include "cpumodel/vmm/x86_boot.h"

namespace cpumodel::vmm {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// The signal that kicks a vCPU thread out of KVM_RUN: an empty handler without SA_RESTART.
int kick_signal() {
  static const int sig = [] {
    int s = SIGRTMIN;
    struct sigaction sa{};
    sa.sa_handler = [](int) {};
    sigemptyset(&sa.sa_mask);
    ::sigaction(s, &sa, nullptr);
    return s;
  }();
  return sig;
}

pid_t current_tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

uint64_t status_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(field, 0) == 0) return std::strtoull(line.c_str() + std::strlen(field), nullptr, 10);
  return 0;
}

uint64_t resident_kib(const GuestMemory& m) {
  if (!m.host() || !m.size()) return 0;
  size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> v((m.size() + page - 1) / page);
  if (::mincore(m.host(), m.size(), v.data()) != 0) return 0;
  uint64_t n = 0;
  for (unsigned char c : v) n += c & 1;
  return n * page / 1024;
}

// Raw mode for a terminal on stdin while the guest owns it; restored on destruction.
class RawTerminal {
 public:
  explicit RawTerminal(int fd) : fd_(fd) {
    if (fd < 0 || !::isatty(fd) || ::tcgetattr(fd, &saved_) != 0) return;
    termios raw = saved_;
    ::cfmakeraw(&raw);
    raw.c_oflag |= OPOST;  // our own messages keep their line ends
    active_ = ::tcsetattr(fd, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) ::tcsetattr(fd_, TCSANOW, &saved_);
  }
  bool active() const { return active_; }

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

std::string exit_text(const kvm_run* run) {
  switch (run->exit_reason) {
    case KVM_EXIT_INTERNAL_ERROR:
      return "KVM internal error, suberror " + std::to_string(run->internal.suberror) + " (KVM_EXIT_INTERNAL_ERROR)";
    case KVM_EXIT_FAIL_ENTRY:
      return "VM entry failed, hardware reason " + hex(run->fail_entry.hardware_entry_failure_reason) +
             " (KVM_EXIT_FAIL_ENTRY)";
    case KVM_EXIT_HLT: return "hlt with no in-kernel LAPIC to wake it (KVM_EXIT_HLT)";
    default: return "unexpected exit reason " + std::to_string(run->exit_reason);
  }
}

}  // namespace

const char* linux_vm_end_name(LinuxVmEnd e) {
  static const char* const kNames[] = {"powered off", "rebooted", "quit", "timed out", "failed", "made no progress"};
  return kNames[static_cast<int>(e)];
}

int LinuxVmResult::exit_code() const {
  switch (end) {
    case LinuxVmEnd::kPowerOff:
    case LinuxVmEnd::kReset:
    case LinuxVmEnd::kQuit: return kExitOk;
    case LinuxVmEnd::kNoProgress: return kExitHost;
    case LinuxVmEnd::kTimeout:
    case LinuxVmEnd::kFailed: break;
  }
  return kExitNegative;
}

PlatformConfig platform_config(const std::vector<VcpuPlace>& places, const std::vector<CpuidTable>& tables) {
  PlatformConfig pc;
  for (size_t i = 0; i < places.size(); ++i) {
    CpuidRegs l1 = i < tables.size() ? tables[i].get(1) : CpuidRegs{};
    pc.cpus.push_back({places[i].apic_id, l1.eax, l1.edx});
  }
  return pc;
}

struct LinuxVm::Impl {
  LinuxVmConfig config;
  Kvm kvm;
  std::optional<Vm> vm;
  std::optional<GuestRam> low, high;
  LinuxBootPlan plan;
  std::vector<Vcpu> vcpus;
  PortBus bus;
  std::unique_ptr<Serial8250> serial;
  std::unique_ptr<I8042> i8042;
  std::unique_ptr<CmosRtc> rtc;
  std::unique_ptr<AcpiPm> pm;
  std::optional<StateCaps> caps;
  bool ran = false;

  // Run state.
  Clock::time_point start;
  std::vector<std::atomic<pid_t>> tids;
  std::vector<std::atomic<bool>> pinned;
  std::atomic<bool> ending{false}, pause_req{false}, stop_input{false};
  std::atomic<uint64_t> exits{0};
  double setup_ms = -1;
  // Exits by cause (kind, port or page, direction), for --stats: under a test run in the nested
  // rig each one costs milliseconds, so which device the guest keeps asking is worth knowing.
  mutable std::mutex causes_mu;
  std::map<std::tuple<uint32_t, uint64_t, bool>, uint64_t> causes;
  void count_cause(const kvm_run& run);
  std::atomic<int64_t> first_output_us{-1};
  mutable std::mutex mu;
  std::condition_variable cv;
  unsigned parked = 0, finished = 0;
  std::optional<LinuxVmResult> end;
  // The vCPU threads: started by run() under threads_mu (QMP may pause and kick from its own
  // thread meanwhile); `started` once run() began starting them.
  std::mutex threads_mu;
  std::vector<std::thread> threads;
  bool started = false;  // under mu

  Status create_machine();
  Status map_ram(unsigned slot, std::optional<GuestRam>& ram, uint64_t base, uint64_t size, size_t region);
  Status create_vcpus();
  Status restore_vcpus();
  Result<const StateCaps*> state_caps();
  void create_devices();
  void irq_line(uint32_t gsi, bool level);
  void finish(LinuxVmEnd kind, const std::string& what, const std::string& dump = "");
  void vcpu_thread(unsigned index);
  bool handle_exit(unsigned index);
  void input_thread(bool raw);
  void kick_until(const std::function<bool()>& done);
  void wait_for_end();
  LinuxVmResult result() const;
};

void LinuxVm::Impl::irq_line(uint32_t gsi, bool level) {
  kvm_irq_level l{};
  l.irq = gsi;
  l.level = level ? 1 : 0;
  ::ioctl(vm->fd(), KVM_IRQ_LINE, &l);
}

void LinuxVm::Impl::finish(LinuxVmEnd kind, const std::string& what, const std::string& dump) {
  std::lock_guard<std::mutex> lock(mu);
  if (!end) {
    end.emplace();
    end->end = kind;
    end->what = what;
    end->dump = dump;
  }
  ending.store(true);
  cv.notify_all();
}

Status LinuxVm::Impl::create_machine() {
  auto k = Kvm::open(config.device);
  if (!k) return k.error();
  kvm = std::move(*k);
  if (!kvm.has(KVM_CAP_IRQCHIP) || !kvm.has(KVM_CAP_PIT2))
    return host_error(config.device + ": this KVM has no in-kernel irqchip and PIT (KVM_CAP_IRQCHIP, KVM_CAP_PIT2), "
                      "which booting Linux needs");
  auto v = kvm.create_vm();
  if (!v) return v.error();
  vm.emplace(std::move(*v));
  if (auto st = vm->set_tss_and_identity_map(BootLayout::kTss, BootLayout::kIdentityMapPage); !st) return st;
  if (auto st = vm->create_irqchip_if_supported(); !st) return st;
  kvm_pit_config pit{};
  pit.flags = KVM_PIT_SPEAKER_DUMMY;  // the kernel answers port 0x61 too (Linux calibrates the TSC with it)
  if (::ioctl(vm->fd(), KVM_CREATE_PIT2, &pit) < 0) return kvm_error("KVM_CREATE_PIT2", errno);
  if (auto st = map_ram(0, low, 0, low_ram_size(config.ram_size), 0); !st) return st;
  if (uint64_t hs = high_ram_size(config.ram_size))
    if (auto st = map_ram(1, high, LinuxLayout::kHighRamStart, hs, 1); !st) return st;
  return ok_status();
}

// Fresh zeroed RAM, or region `region` of the snapshot being restored (its file, mapped privately).
Status LinuxVm::Impl::map_ram(unsigned slot, std::optional<GuestRam>& ram, uint64_t base, uint64_t size,
                              size_t region) {
  auto r = config.restore ? GuestRam::map_file(config.ram_files.at(region), base, size) : GuestRam::allocate(base, size);
  if (!r) return r.error();
  ram.emplace(std::move(*r));
  return vm->map_memory(slot, base, ram->memory().host(), size);
}

Result<const StateCaps*> LinuxVm::Impl::state_caps() {
  if (!caps) {
    auto c = probe_state_caps(kvm, *vm);
    if (!c) return c.error();
    caps = std::move(*c);
  }
  return &*caps;
}

// Every vCPU with its saved state (vcpu_state.cc: CPUID first, MP state, ..., events last), then
// the VM's irqchip, PIT and kvmclock; the port devices follow in create().
Status LinuxVm::Impl::restore_vcpus() {
  auto c = state_caps();
  if (!c) return c.error();
  const MachineState& saved = config.restore->state;
  std::vector<uint32_t> apic_ids;
  for (const auto& v : saved.vcpus) apic_ids.push_back(v.apic_id);
  return restore_machine_state(*vm, saved, apic_ids, **c, vcpus);
}

Status LinuxVm::Impl::create_vcpus() {
  for (size_t i = 0; i < config.places.size(); ++i) {
    auto vcpu = vm->create_vcpu(config.places[i].apic_id);
    if (!vcpu) return vcpu.error();
    if (auto st = vcpu->set_cpuid(config.tables[i]); !st) return st;
    if (i == 0) {  // the bootstrap processor starts at the 64-bit entry; the APs wait for INIT/SIPI
      auto sregs = vcpu->sregs();
      if (!sregs) return sregs.error();
      apply_boot_sregs(CpuMode::kLong64, *sregs);
      if (auto st = vcpu->set_sregs(*sregs); !st) return st;
      kvm_regs regs{};
      regs.rflags = 0x2;
      regs.rip = plan.entry;
      regs.rsi = plan.zero_page;
      regs.rsp = regs.rbp = LinuxLayout::kBootStack;
      if (auto st = vcpu->set_regs(regs); !st) return st;
    }
    vcpus.push_back(std::move(*vcpu));
  }
  return ok_status();
}

void LinuxVm::Impl::create_devices() {
  tids = std::vector<std::atomic<pid_t>>(vcpus.size());
  pinned = std::vector<std::atomic<bool>>(vcpus.size());
  Impl* self = this;
  IrqFn irq = [self](uint32_t gsi, bool level) { self->irq_line(gsi, level); };
  EventFn event = [self](MachineEvent e, const std::string& why) {
    self->finish(e == MachineEvent::kPowerOff ? LinuxVmEnd::kPowerOff : LinuxVmEnd::kReset, why);
  };
  serial = std::make_unique<Serial8250>(irq, Serial8250::kCom1Irq, config.serial_out_fd);
  serial->set_output_observer([self](std::span<const uint8_t> bytes) {
    int64_t none = -1;
    self->first_output_us.compare_exchange_strong(
        none, std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - self->start).count());
    if (self->config.serial_observer) self->config.serial_observer(bytes);
  });
  i8042 = std::make_unique<I8042>(event);
  rtc = std::make_unique<CmosRtc>();
  pm = std::make_unique<AcpiPm>(irq, event);
  bus.add(Serial8250::kCom1, 8, serial.get());
  bus.add(I8042::kDataPort, 5, i8042.get());
  bus.add(CmosRtc::kBase, 2, rtc.get());
  bus.add(PlatformLayout::kPm1aEvent, 6, pm.get());
}

namespace {

// A Linux guest's snapshot, checked before anything is created.
Status check_restore(const LinuxVmConfig& c) {
  const Snapshot& snap = *c.restore;
  if (!snap.state.devices)
    return input_error("the snapshot has no port device state: it is not of a Linux guest (`cpumodel boot`)");
  if (!snap.state.vm.irqchip || !snap.state.vm.pit)
    return input_error("the snapshot has no irqchip or PIT state, which a Linux guest has");
  if (c.places.size() != snap.state.vcpus.size())
    return input_error("the snapshot has " + std::to_string(snap.state.vcpus.size()) + " vCPUs, the topology " +
                       std::to_string(c.places.size()));
  auto regions = memory_regions(snap.header);
  if (c.ram_files.size() != regions.size())
    return input_error("the snapshot has " + std::to_string(regions.size()) + " memory regions, " +
                       std::to_string(c.ram_files.size()) + " files were given");
  uint64_t total = 0;
  for (const MemoryRef* r : regions) total += r->size;
  if (regions[0]->guest_base != 0 || regions[0]->size != low_ram_size(total) ||
      (regions.size() > 1 && (regions[1]->guest_base != LinuxLayout::kHighRamStart ||
                              regions[1]->size != high_ram_size(total))) ||
      regions.size() > 2)
    return input_error("the snapshot's memory regions are not laid out as this VMM lays out " + format_size(total) +
                       " of RAM");
  return ok_status();
}

}  // namespace

Result<std::unique_ptr<LinuxVm>> LinuxVm::create(LinuxVmConfig config) {
  if (config.restore) {
    if (auto st = check_restore(config); !st) return st.error();
    if (auto st = check_pin_map(config.pins, static_cast<unsigned>(config.places.size())); !st) return st.error();
    auto impl = std::make_unique<Impl>();
    impl->config = std::move(config);
    Impl& m = *impl;
    m.config.ram_size = 0;
    for (const MemoryRef* r : memory_regions(m.config.restore->header)) m.config.ram_size += r->size;
    if (auto st = m.create_machine(); !st) return st.error();
    if (auto st = m.restore_vcpus(); !st) return st.error();
    m.create_devices();
    const DeviceState& d = *m.config.restore->state.devices;
    m.serial->restore(d.serial);
    m.i8042->restore(d.i8042);
    m.rtc->restore(d.cmos);
    m.pm->restore(d.pm);
    return std::unique_ptr<LinuxVm>(new LinuxVm(std::move(impl)));
  }
  if (config.places.empty()) return input_error("a VM needs at least one vCPU");
  if (config.tables.size() != config.places.size())
    return input_error("one CPUID table per vCPU: " + std::to_string(config.tables.size()) + " tables for " +
                       std::to_string(config.places.size()) + " vCPUs");
  if (config.ram_size < LinuxLayout::kMinRam)
    return input_error("-m " + format_size(config.ram_size) + " is too small for a Linux guest");
  if (!config.tables[0].bit(0x80000001, 0, Reg::kEdx, 29))
    return input_error("the CPU model lacks lm (long mode): a 64-bit kernel cannot run on it");
  if (auto st = check_pin_map(config.pins, static_cast<unsigned>(config.places.size())); !st) return st.error();
  auto impl = std::make_unique<Impl>();
  impl->config = std::move(config);
  Impl& m = *impl;
  // Parse and plan first: a bad kernel is bad input whatever the host.
  LinuxBootConfig boot{m.config.kernel, m.config.kernel_name, m.config.initrd, m.config.initrd_name,
                       m.config.cmdline, m.config.ram_size, LinuxLayout::kAcpiTables};
  boot.release_sources = m.config.release_sources;
  if (auto p = plan_kernel_boot(boot); !p) return p.error();
  PlatformConfig pc = platform_config(m.config.places, m.config.tables);
  if (auto st = m.create_machine(); !st) return st.error();
  const GuestMemory& mem = m.low->memory();
  auto plan = write_linux_boot(mem, boot);
  if (!plan) return plan.error();
  m.plan = std::move(*plan);
  // The MP table cannot name APIC IDs above 254; such guests have the MADT's x2APIC entries only.
  bool small_ids = std::all_of(pc.cpus.begin(), pc.cpus.end(), [](const PlatformCpu& c) { return c.apic_id < 0xff; });
  if (small_ids)
    if (auto r = write_mp_table(mem, LinuxLayout::kMpTable, pc); !r) return r.error();
  if (auto r = write_acpi_tables(mem, LinuxLayout::kAcpiTables, pc); !r) return r.error();
  if (auto st = m.create_vcpus(); !st) return st.error();
  m.create_devices();
  return std::unique_ptr<LinuxVm>(new LinuxVm(std::move(impl)));
}

LinuxVm::LinuxVm(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LinuxVm::~LinuxVm() = default;
Backend LinuxVm::backend() const { return impl_->kvm.backend(); }
const LinuxBootPlan& LinuxVm::boot_plan() const { return impl_->plan; }
const GuestMemory& LinuxVm::low_memory() const { return impl_->low->memory(); }

namespace {

// How long this process has existed: /proc/self/stat's start time (clock ticks since boot)
// against CLOCK_BOOTTIME. -1 when unreadable.
double process_age_ms() {
  std::string f = proc_stat_field("/proc/self/stat", 22);
  char* end = nullptr;
  double ticks = std::strtod(f.c_str(), &end);
  if (end == f.c_str()) return -1;
  timespec now{};
  ::clock_gettime(CLOCK_BOOTTIME, &now);
  double start_ms = ticks * 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
  return static_cast<double>(now.tv_sec) * 1000.0 + static_cast<double>(now.tv_nsec) / 1e6 - start_ms;
}

}  // namespace

void LinuxVm::Impl::count_cause(const kvm_run& run) {
  std::tuple<uint32_t, uint64_t, bool> key{run.exit_reason, 0, false};
  if (run.exit_reason == KVM_EXIT_IO) key = {run.exit_reason, run.io.port, run.io.direction == KVM_EXIT_IO_OUT};
  if (run.exit_reason == KVM_EXIT_MMIO) key = {run.exit_reason, run.mmio.phys_addr & ~0xfffull, run.mmio.is_write != 0};
  // At most kMaxCauses kinds (a guest touching page after unmapped page makes a new key each
  // time): the rest are counted under one "other" key.
  constexpr size_t kMaxCauses = 64;
  std::lock_guard<std::mutex> lock(causes_mu);
  auto it = causes.find(key);
  if (it == causes.end() && causes.size() >= kMaxCauses) it = causes.try_emplace({UINT32_MAX, 0, false}, 0).first;
  else if (it == causes.end()) it = causes.emplace(key, 0).first;
  ++it->second;
}

// Returns true when the vCPU thread should stop.
bool LinuxVm::Impl::handle_exit(unsigned index) {
  Vcpu& vcpu = vcpus[index];
  kvm_run* run = vcpu.run_state();
  count_cause(*run);
  switch (run->exit_reason) {
    case KVM_EXIT_IO:
      bus.io(run->io.port, run->io.direction == KVM_EXIT_IO_OUT, run->io.size, run->io.count,
             reinterpret_cast<uint8_t*>(run) + run->io.data_offset);
      return false;
    case KVM_EXIT_MMIO:  // nothing is mapped there: reads as all-ones, writes are dropped
      if (!run->mmio.is_write) std::memset(run->mmio.data, 0xff, sizeof run->mmio.data);
      return false;
    case KVM_EXIT_INTR: return false;
    case KVM_EXIT_SHUTDOWN: finish(LinuxVmEnd::kReset, "vCPU " + std::to_string(index) + " triple-faulted"); return true;
    case KVM_EXIT_SYSTEM_EVENT:
      if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN) finish(LinuxVmEnd::kPowerOff, "system event: shutdown");
      else if (run->system_event.type == KVM_SYSTEM_EVENT_RESET) finish(LinuxVmEnd::kReset, "system event: reset");
      else finish(LinuxVmEnd::kFailed, "system event " + std::to_string(run->system_event.type));
      return true;
    default: {
      std::string dump;
      auto r = vcpu.regs();
      auto s = vcpu.sregs();
      if (r && s) dump = register_dump(*r, *s);
      finish(LinuxVmEnd::kFailed, "vCPU " + std::to_string(index) + ": " + exit_text(run), dump);
      return true;
    }
  }
}

void LinuxVm::Impl::vcpu_thread(unsigned index) {
  tids[index].store(current_tid());
  std::string name = "vcpu " + std::to_string(index);
  ::pthread_setname_np(::pthread_self(), name.c_str());
  if (auto it = config.pins.find(index); it != config.pins.end()) {
    if (auto st = pin_current_thread(it->second); !st) finish(LinuxVmEnd::kFailed, st.error().message);
    pinned[index].store(true);
  }
  Vcpu& vcpu = vcpus[index];
  // The last exit was handled here: KVM completes that instruction (an `in` gets its data, RIP
  // moves past it) only on the next KVM_RUN, so a pause first re-enters with immediate_exit set;
  // state saved before that would lose the instruction.
  // Completing it may itself need user space (the next part of a `rep outs`, a split MMIO
  // access): KVM_RUN then returns 0 with that exit, handled here like any other, until it returns
  // -EINTR with nothing pending.
  bool io_pending = false, stop = false;
  while (!ending.load()) {
    if (pause_req.load()) {
      if (io_pending) {
        __atomic_store_n(&vcpu.run_state()->immediate_exit, 1, __ATOMIC_SEQ_CST);
        int r;
        while (!stop && (r = vcpu.run()) == 0) {
          exits.fetch_add(1, std::memory_order_relaxed);
          stop = handle_exit(index);
        }
        io_pending = false;
        if (stop) break;
      }
      std::unique_lock<std::mutex> lock(mu);
      ++parked;
      cv.notify_all();
      cv.wait(lock, [&] { return !pause_req.load() || ending.load(); });
      --parked;
      continue;
    }
    __atomic_store_n(&vcpu.run_state()->immediate_exit, 0, __ATOMIC_SEQ_CST);
    if (pause_req.load() || ending.load()) continue;
    int r = vcpu.run();
    if (r == -EINTR || r == -EAGAIN) {
      io_pending = false;
      continue;
    }
    if (r < 0) {
      finish(LinuxVmEnd::kFailed, "vCPU " + std::to_string(index) + ": " + kvm_error("KVM_RUN", -r).message);
      break;
    }
    exits.fetch_add(1, std::memory_order_relaxed);
    io_pending = true;
    if (handle_exit(index)) break;
  }
  std::lock_guard<std::mutex> lock(mu);
  ++finished;
  cv.notify_all();
}

// Kicks every vCPU out of KVM_RUN (immediate_exit + signal) until done() holds.
void LinuxVm::Impl::kick_until(const std::function<bool()>& done) {
  std::unique_lock<std::mutex> lock(mu);
  while (!done()) {
    lock.unlock();
    {
      std::lock_guard<std::mutex> guard(threads_mu);
      for (size_t i = 0; i < threads.size(); ++i) {
        __atomic_store_n(&vcpus[i].run_state()->immediate_exit, 1, __ATOMIC_SEQ_CST);
        ::pthread_kill(threads[i].native_handle(), kick_signal());
      }
    }
    lock.lock();
    cv.wait_for(lock, std::chrono::milliseconds(5), done);
  }
}

void LinuxVm::Impl::input_thread(bool raw) {
  bool escape = false;  // Ctrl-A seen (QEMU's -nographic escape: Ctrl-A x quits, Ctrl-A Ctrl-A sends one)
  uint8_t buf[4096];
  while (!stop_input.load() && !ending.load()) {
    pollfd p{config.serial_in_fd, POLLIN, 0};
    int n = ::poll(&p, 1, 100);
    if (n <= 0) continue;
    ssize_t got = ::read(config.serial_in_fd, buf, sizeof buf);
    if (got <= 0) return;  // EOF: the guest keeps running without input
    std::vector<uint8_t> data;
    for (ssize_t i = 0; i < got; ++i) {
      uint8_t c = buf[i];
      if (raw && escape) {
        escape = false;
        if (c == 'x') return finish(LinuxVmEnd::kQuit, "Ctrl-A x on the console");
        if (c != 0x01) continue;
      } else if (raw && c == 0x01) {
        escape = true;
        continue;
      }
      data.push_back(c);
    }
    std::span<const uint8_t> rest(data);
    while (!rest.empty() && !stop_input.load() && !ending.load()) {
      // Not while paused: a snapshot reads the UART after the irqchip, and input arriving between
      // the two would leave them disagreeing about IRQ 4.
      if (pause_req.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      rest = rest.subspan(serial->push_input(rest));
      if (!rest.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

Clock::time_point after(Clock::time_point start, double seconds) {
  if (seconds <= 0) return Clock::time_point::max();
  return start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// Waits until something ends the run, ending it at --timeout and at the kvm_pvm watch.
void LinuxVm::Impl::wait_for_end() {
  std::unique_lock<std::mutex> lock(mu);
  auto deadline = after(start, config.timeout_s), watch = after(start, config.pvm_watch_s);
  auto ended = [&] { return end.has_value(); };
  while (!end) {
    auto next = std::min(deadline, watch);
    if (next == Clock::time_point::max()) return cv.wait(lock, ended);
    if (cv.wait_until(lock, next, ended)) return;
    lock.unlock();
    if (Clock::now() >= watch) {
      watch = Clock::time_point::max();
      if (serial->bytes_out() == 0)
        finish(LinuxVmEnd::kNoProgress,
               "the guest kernel wrote nothing to the serial port in " + std::to_string(int(config.pvm_watch_s)) +
                   " s: this host's KVM backend (" + backend_name(kvm.backend()) +
                   ") cannot run an unmodified Linux kernel; use a host with kvm_intel or kvm_amd");
    }
    if (Clock::now() >= deadline)
      finish(LinuxVmEnd::kTimeout,
             "the guest was still running after --timeout " + std::to_string(config.timeout_s).substr(0, 6) + " s");
    lock.lock();
  }
}

LinuxVmResult LinuxVm::Impl::result() const {
  LinuxVmResult r = *end;
  r.run_ms = ms_since(start);
  r.setup_ms = setup_ms;
  int64_t first = first_output_us.load();
  r.first_output_ms = first < 0 ? -1 : static_cast<double>(first) / 1000.0;
  r.serial_bytes = serial->bytes_out();
  r.exits = exits.load();
  {
    std::lock_guard<std::mutex> lock(causes_mu);
    for (const auto& [key, n] : causes) {
      auto [reason, where, out] = key;
      char buf[64];
      if (reason == KVM_EXIT_IO)
        std::snprintf(buf, sizeof buf, "io %#llx %s", static_cast<unsigned long long>(where), out ? "out" : "in");
      else if (reason == KVM_EXIT_MMIO)
        std::snprintf(buf, sizeof buf, "mmio %#llx %s", static_cast<unsigned long long>(where), out ? "write" : "read");
      else if (reason == UINT32_MAX)
        std::snprintf(buf, sizeof buf, "other");
      else
        std::snprintf(buf, sizeof buf, "exit reason %u", reason);
      r.exit_causes.emplace_back(buf, n);
    }
  }
  std::stable_sort(r.exit_causes.begin(), r.exit_causes.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  r.peak_rss_kib = status_kib("VmHWM:");
  r.rss_anon_kib = status_kib("RssAnon:");
  r.rss_file_kib = status_kib("RssFile:") + status_kib("RssShmem:");  // libraries on tmpfs/ramfs are shmem
  r.guest_ram_kib = config.ram_size >> 10;
  r.guest_resident_kib = resident_kib(low->memory()) + (high ? resident_kib(high->memory()) : 0);
  return r;
}

Result<LinuxVmResult> LinuxVm::run() {
  Impl& m = *impl_;
  if (m.ran) return input_error("a LinuxVm runs once");
  m.ran = true;
  kick_signal();
  size_t n = m.vcpus.size();
  // SIGTERM, SIGINT and SIGHUP end the run like QMP quit (the terminal is restored, the socket
  // removed): blocked in every thread this starts, taken by one that waits for them.
  sigset_t stop_signals, old_mask;
  sigemptyset(&stop_signals);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&stop_signals, sig);
  ::pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
  std::thread signals([&m, &stop_signals] {
    while (!m.ending.load()) {
      timespec ts{0, 100 * 1000 * 1000};
      int sig = ::sigtimedwait(&stop_signals, nullptr, &ts);
      if (sig > 0) m.finish(LinuxVmEnd::kQuit, std::string("terminated by signal ") + ::strsignal(sig));
    }
  });
  RawTerminal terminal(m.config.serial_in_fd);
  m.start = Clock::now();
  m.setup_ms = process_age_ms();
  std::thread input;
  if (m.config.serial_in_fd >= 0) input = std::thread([&m, raw = terminal.active()] { m.input_thread(raw); });
  {
    std::lock_guard<std::mutex> guard(m.threads_mu);
    {
      std::lock_guard<std::mutex> lock(m.mu);
      m.started = true;
    }
    m.threads.reserve(n);
    for (size_t i = 0; i < n; ++i) m.threads.emplace_back([&m, i] { m.vcpu_thread(static_cast<unsigned>(i)); });
  }
  if (m.config.on_started) {
    // Each vCPU thread records its id first thing; give them up to 100 ms to get there.
    for (int tries = 0; tries < 100; ++tries) {
      bool all = std::all_of(m.tids.begin(), m.tids.end(), [](const std::atomic<pid_t>& t) { return t.load() != 0; });
      if (all || m.ending.load()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    m.config.on_started();
  }
  m.wait_for_end();
  m.kick_until([&] { return m.finished == n; });
  {
    std::lock_guard<std::mutex> guard(m.threads_mu);
    for (auto& t : m.threads) t.join();
  }
  m.stop_input.store(true);
  if (input.joinable()) input.join();
  signals.join();
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  return m.result();
}

void LinuxVm::pause() {
  Impl& m = *impl_;
  m.pause_req.store(true);
  // Before run() starts the threads there is nothing to wait for (they park as they start).
  size_t n = m.vcpus.size();
  m.kick_until([&] { return !m.started || m.parked + m.finished >= n || m.ending.load(); });
}

void LinuxVm::resume() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->pause_req.store(false);
  impl_->cv.notify_all();
}

bool LinuxVm::paused() const { return impl_->pause_req.load(); }
void LinuxVm::set_on_started(std::function<void()> f) { impl_->config.on_started = std::move(f); }

Result<MachineState> LinuxVm::save_state() {
  Impl& m = *impl_;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    // 7: a guest that has powered off, reset or failed has no state worth resuming.
    if (m.end) return input_error("the guest has ended (" + std::string(linux_vm_end_name(m.end->end)) + "): nothing to save");
    if (m.started && !(m.pause_req.load() && m.parked + m.finished >= m.vcpus.size()))
      return input_error("the VM is running: pause it before saving its state");
  }
  auto caps = m.state_caps();
  if (!caps) return caps.error();
  auto s = save_machine_state(m.vcpus, *m.vm, **caps);
  if (!s) return s.error();
  s->devices = DeviceState{m.serial->save(), m.i8042->save(), m.rtc->save(), m.pm->save()};
  return s;
}

std::vector<const GuestMemory*> LinuxVm::memory() const {
  std::vector<const GuestMemory*> out{&impl_->low->memory()};
  if (impl_->high) out.push_back(&impl_->high->memory());
  return out;
}

const Kvm& LinuxVm::kvm() const { return impl_->kvm; }
void LinuxVm::request_quit(const std::string& why) { impl_->finish(LinuxVmEnd::kQuit, why); }
void LinuxVm::press_power_button() { impl_->pm->press_power_button(); }

std::vector<VcpuThreadInfo> LinuxVm::vcpu_threads() const {
  const Impl& m = *impl_;
  std::vector<VcpuThreadInfo> out;
  for (size_t i = 0; i < m.config.places.size(); ++i) {
    bool started = i < m.tids.size();
    out.push_back(vcpu_thread_info(m.config.places[i], started ? m.tids[i].load() : 0,
                                   started && m.pinned[i].load()));
  }
  return out;
}

VcpuThreadInfo vcpu_thread_info(const VcpuPlace& place, pid_t tid, bool pinned) {
  VcpuThreadInfo v;
  v.place = place;
  v.tid = tid;
  v.pinned = pinned;
  if (tid > 0) {
    v.host_cpu = last_cpu_of(tid);
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(tid, sizeof set, &set) == 0)
      for (unsigned c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &set)) v.allowed.add(c);
  }
  return v;
}

}  // namespace cpumodel::vmm
