#include "cpumodel/vmm/machine.h"

#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include "cpumodel/vmm/guest_abi.h"
#include "cpumodel/vmm/vcpu_state.h"

namespace cpumodel::vmm {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kApicDefaultBase = 0xfee00000, kApicBaseEnable = 1u << 11, kApicBaseBsp = 1u << 8;

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

std::string io_exit_text(const kvm_run* run) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "unexpected %s of %u byte(s) to I/O port 0x%x (KVM_EXIT_IO)",
                run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in", run->io.size, run->io.port);
  return buf;
}

std::string mmio_exit_text(const kvm_run* run) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s of %u byte(s) at guest-physical 0x%llx, outside guest RAM (KVM_EXIT_MMIO)",
                run->mmio.is_write ? "write" : "read", run->mmio.len,
                static_cast<unsigned long long>(run->mmio.phys_addr));
  return buf;
}

std::string internal_error_text(const kvm_run* run) {
  static const char* const kSub[] = {"", "emulation failure", "simultaneous exceptions",
                                     "delivery event", "unexpected exit reason"};
  uint32_t sub = run->internal.suberror;
  std::string out = "KVM internal error, suberror " + std::to_string(sub);
  if (sub < std::size(kSub) && kSub[sub][0]) out += std::string(" (") + kSub[sub] + ")";
  for (uint32_t i = 0; i < run->internal.ndata && i < 16; ++i) {
    out += i ? " " : ": data ";
    out += hex(run->internal.data[i]);
  }
  return out;
}

}  // namespace

const char* vcpu_end_name(VcpuEnd e) {
  static const char* const kNames[] = {"done", "triple fault", "internal error", "entry failure",
                                       "unmapped memory", "unexpected exit", "timeout", "stopped", "error"};
  return kNames[static_cast<int>(e)];
}

bool MachineReport::all_done() const {
  for (const auto& v : vcpus)
    if (v.end != VcpuEnd::kDone) return false;
  return !vcpus.empty();
}

std::string MachineReport::failure() const {
  const VcpuReport* first = nullptr;
  for (const auto& v : vcpus) {
    if (v.end == VcpuEnd::kDone) continue;
    if (!first || (first->end == VcpuEnd::kStopped && v.end != VcpuEnd::kStopped)) first = &v;
  }
  return first ? "vCPU " + std::to_string(first->index) + ": " + first->what : "";
}

std::string register_dump(const kvm_regs& r, const kvm_sregs& s) {
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "  rip %016llx rsp %016llx rflags %016llx\n"
                "  rax %016llx rbx %016llx rcx %016llx rdx %016llx\n"
                "  rsi %016llx rdi %016llx rbp %016llx\n"
                "  r8  %016llx r9  %016llx r10 %016llx r11 %016llx\n"
                "  cr0 %016llx cr2 %016llx cr3 %016llx cr4 %016llx efer %llx\n"
                "  cs %04x base %llx limit %x l %u db %u  apic_base %llx",
                r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.r8, r.r9, r.r10,
                r.r11, s.cr0, s.cr2, s.cr3, s.cr4, s.efer, s.cs.selector, s.cs.base, s.cs.limit, s.cs.l, s.cs.db,
                s.apic_base);
  return buf;
}

struct PreparedVm {
  std::string device;
  uint64_t ram_size = 0;
  std::vector<uint32_t> apic_ids;
  bool irqchip = false;
  Kvm kvm;
  std::optional<Vm> vm;
  std::optional<GuestRam> ram;
  std::vector<Vcpu> vcpus;
};

namespace {

// Opens KVM, creates the VM (TSS, identity map, irqchip when asked and supported) and maps RAM.
Status create_vm_and_ram(const std::string& device, uint64_t ram_size, bool irqchip, const std::string& ram_file,
                         Kvm& kvm_out, std::optional<Vm>& vm_out, std::optional<GuestRam>& ram_out) {
  auto kvm = Kvm::open(device);
  if (!kvm) return kvm.error();
  kvm_out = std::move(*kvm);
  auto vm = kvm_out.create_vm();
  if (!vm) return vm.error();
  vm_out.emplace(std::move(*vm));
  if (auto st = vm_out->set_tss_and_identity_map(BootLayout::kTss, BootLayout::kIdentityMapPage); !st) return st;
  if (irqchip)
    if (auto st = vm_out->create_irqchip_if_supported(); !st) return st;
  auto ram = ram_file.empty() ? GuestRam::allocate(0, ram_size) : GuestRam::map_file(ram_file, 0, ram_size);
  if (!ram) return ram.error();
  ram_out.emplace(std::move(*ram));
  const GuestMemory& mem = ram_out->memory();
  return vm_out->map_memory(0, 0, mem.host(), mem.size());
}

}  // namespace

Result<std::shared_ptr<PreparedVm>> prepare_vm(const std::string& device, uint64_t ram_size,
                                               std::vector<uint32_t> apic_ids, bool irqchip) {
  auto p = std::make_shared<PreparedVm>();
  p->device = device;
  p->ram_size = ram_size;
  p->apic_ids = std::move(apic_ids);
  p->irqchip = irqchip;
  if (auto st = create_vm_and_ram(device, ram_size, irqchip, "", p->kvm, p->vm, p->ram); !st) return st.error();
  for (uint32_t id : p->apic_ids) {
    auto vcpu = p->vm->create_vcpu(id);
    if (!vcpu) return vcpu.error();
    p->vcpus.push_back(std::move(*vcpu));
  }
  return p;
}

struct Machine::Impl {
  MachineConfig config;
  bool prepared_ahead = false;
  Kvm kvm;
  std::optional<Vm> vm;
  std::optional<GuestRam> ram;
  std::vector<Vcpu> vcpus;
  bool ran = false;

  // Run state.
  std::atomic<bool> stop{false};
  std::atomic<bool> timed_out{false};
  std::mutex mu;
  std::condition_variable cv;
  unsigned finished = 0;
  bool faulted = false;
  std::vector<VcpuReport> reports;
  std::vector<std::atomic<bool>> thread_done;
  std::vector<std::atomic<pid_t>> live_tids;     // for vcpu_tids(), from other threads

  // Pause, resume and stop from another thread (snapshots, QMP); restore from a snapshot.
  std::atomic<bool> pause_requested{false};
  std::atomic<bool> stop_requested{false};
  unsigned parked = 0;
  bool running = false;
  std::vector<pthread_t> handles;
  std::optional<StateCaps> caps;
  Result<const StateCaps*> state_caps();
  void park();
  void kick_handles();

  // From two threads at once, for different vCPUs (create()).
  Status setup_vcpu(unsigned index, Vcpu& vcpu) const;
  void vcpu_thread(unsigned index);
  bool handle_exit(Vcpu& vcpu, VcpuReport& rep);
  void finish_vcpu(unsigned index, Vcpu& vcpu, VcpuReport& rep);
  void kick_all(const std::vector<std::thread>& threads);
};

Status Machine::Impl::setup_vcpu(unsigned index, Vcpu& vcpu) const {
  const VcpuConfig& vc = config.vcpus[index];
  if (vc.cpuid)
    if (auto st = vcpu.set_cpuid(*vc.cpuid); !st) return st;
  auto sregs = vcpu.sregs();
  if (!sregs) return sregs.error();
  apply_boot_sregs(config.mode, *sregs);
  if (!vm->has_irqchip())
    sregs->apic_base = kApicDefaultBase | kApicBaseEnable | (vc.apic_id == 0 ? kApicBaseBsp : 0);
  if (auto st = vcpu.set_sregs(*sregs); !st) {
    Error e = st.error();
    if (config.mode == CpuMode::kLong64 && vc.cpuid && !vc.cpuid->bit(0x80000001, 0, Reg::kEdx, 29))
      e.message += " (the CPUID table lacks lm, which KVM needs for long mode)";
    return e;
  }
  kvm_regs regs{};
  regs.rflags = 0x2;
  regs.rip = vc.rip;
  regs.rsp = vc.rsp;
  regs.rdi = vc.rdi;
  regs.rsi = vc.rsi;
  regs.rdx = vc.rdx;
  regs.rbp = vc.rbp;
  if (auto st = vcpu.set_regs(regs); !st) return st;
  if (vm->has_irqchip())
    if (auto st = vcpu.set_runnable(); !st) return st;
  return ok_status();
}

Result<std::unique_ptr<Machine>> Machine::create(MachineConfig config) {
  auto impl = std::make_unique<Impl>();
  if (config.vcpus.empty()) return input_error("a VM needs at least one vCPU");
  if (config.ram_size < BootLayout::kData || config.ram_size > BootLayout::kIdentityMapped)
    return input_error("guest RAM must be between 64 KiB and 1 GiB, not " + hex(config.ram_size));
  impl->config = std::move(config);
  // Sized once here: vcpu_tids() may be asked (QMP) before run() starts the threads.
  impl->live_tids = std::vector<std::atomic<pid_t>>(impl->config.vcpus.size());
  std::vector<uint32_t> apic_ids;
  for (const auto& vc : impl->config.vcpus) apic_ids.push_back(vc.apic_id);
  // The prepared VM is taken out of the shared object, which is left empty (a caller may still hold
  // the pointer): none is adopted twice. Adopted when it is whole and fits; more RAM than asked is
  // fine (the guest sees the RAM the Machine has). One that does not fit is closed before the new
  // VM is made.
  PreparedVm taken;
  if (impl->config.prepared) std::swap(taken, *impl->config.prepared);
  impl->config.prepared.reset();
  bool adopt = taken.vm && taken.ram && taken.vcpus.size() == apic_ids.size() && !impl->config.restore &&
               impl->config.ram_file.empty() && taken.device == impl->config.device &&
               taken.ram_size >= impl->config.ram_size && taken.apic_ids == apic_ids &&
               taken.irqchip == impl->config.irqchip;
  if (adopt) {
    impl->prepared_ahead = true;
    impl->config.ram_size = taken.ram_size;
    impl->kvm = std::move(taken.kvm);
    impl->vm = std::move(taken.vm);
    impl->ram = std::move(taken.ram);
  } else {
    taken = PreparedVm();
    if (auto st = create_vm_and_ram(impl->config.device, impl->config.ram_size, impl->config.irqchip,
                                    impl->config.ram_file, impl->kvm, impl->vm, impl->ram);
        !st)
      return st.error();
  }
  const GuestMemory& mem = impl->ram->memory();
  if (const auto& saved = impl->config.restore) {
    auto caps = impl->state_caps();
    if (!caps) return caps.error();
    if (auto st = restore_machine_state(*impl->vm, *saved, apic_ids, **caps, impl->vcpus); !st) return st.error();
    return std::unique_ptr<Machine>(new Machine(std::move(impl)));
  }
  if (auto st = write_boot_tables(mem, impl->config.mode); !st) return st.error();
  size_t n = impl->config.vcpus.size();
  std::vector<Vcpu> created;  // in index order, as KVM numbers them
  if (adopt) {
    created = std::move(taken.vcpus);
  } else {
    for (const auto& vc : impl->config.vcpus) {
      auto vcpu = impl->vm->create_vcpu(vc.apic_id);
      if (!vcpu) return vcpu.error();
      created.push_back(std::move(*vcpu));
    }
  }
  // Each vCPU's CPUID, registers and APIC base: ~0.09 ms a vCPU on kvm_pvm (KVM_SET_CPUID2 runs
  // host CPUIDs, which trap there), so from 4 vCPUs on a second thread sets up the second half.
  // The first failure by index is the one reported (after any vCPU KVM could not create).
  std::vector<Status> set(n, ok_status());
  auto set_up = [&](size_t from, size_t to) noexcept {
    for (size_t i = from; i < to; ++i) {
      try {
        set[i] = impl->setup_vcpu(static_cast<unsigned>(i), created[i]);
      } catch (const std::exception& e) {  // no allocation, say; not to end the process
        set[i] = host_error("setting up vCPU " + std::to_string(i) + ": " + e.what());
      }
      if (!set[i]) return;
    }
  };
  std::thread helper;
  size_t half = n >= 4 ? n / 2 : n;
  if (half < n) {
    try {
      helper = std::thread(set_up, half, n);
    } catch (const std::system_error&) {
      half = n;  // no thread: all of them here
    }
  }
  set_up(0, half);
  if (helper.joinable()) helper.join();
  for (const Status& st : set)
    if (!st) return st.error();
  impl->vcpus = std::move(created);
  return std::unique_ptr<Machine>(new Machine(std::move(impl)));
}

Machine::Machine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Machine::~Machine() = default;

Teardown::~Teardown() { wait(); }

void Teardown::dispose(std::unique_ptr<Machine> machine) {
  if (!machine) return;
  try {
    threads_.emplace_back([m = std::move(machine)]() mutable { m.reset(); });
  } catch (const std::exception&) {
    // No thread (or no room to note it): the lambda holding the machine is destroyed here, and
    // the machine with it, in this thread.
  }
}

void Teardown::wait() {
  for (auto& t : threads_) t.join();
  threads_.clear();
}
const GuestMemory& Machine::memory() const { return impl_->ram->memory(); }
Backend Machine::backend() const { return impl_->kvm.backend(); }

Status Machine::load_code(std::span<const uint8_t> code) {
  if (code.size() > BootLayout::kCodeMax)
    return input_error("guest code of " + std::to_string(code.size()) + " bytes exceeds " +
                       std::to_string(BootLayout::kCodeMax));
  return memory().write(BootLayout::kCode, code);
}

// Returns true when the vCPU thread should stop.
bool Machine::Impl::handle_exit(Vcpu& vcpu, VcpuReport& rep) {
  kvm_run* run = vcpu.run_state();
  switch (run->exit_reason) {
    case KVM_EXIT_IO:
      if (run->io.port == CPUMODEL_DONE_PORT && run->io.direction == KVM_EXIT_IO_OUT && run->io.size == 4) {
        std::memcpy(&rep.done_value, reinterpret_cast<uint8_t*>(run) + run->io.data_offset, 4);
        rep.end = VcpuEnd::kDone;
        rep.what = "done";
        return true;
      }
      if (config.on_io && run->io.port != CPUMODEL_DONE_PORT && config.on_io(rep.index, *run)) return false;
      rep.end = VcpuEnd::kUnexpectedExit;
      rep.what = io_exit_text(run);
      return true;
    case KVM_EXIT_SHUTDOWN:
      rep.end = VcpuEnd::kShutdown;
      rep.what = "triple fault (KVM_EXIT_SHUTDOWN)";
      return true;
    case KVM_EXIT_INTERNAL_ERROR:
      rep.end = VcpuEnd::kInternalError;
      rep.what = internal_error_text(run);
      return true;
    case KVM_EXIT_FAIL_ENTRY:
      rep.end = VcpuEnd::kFailEntry;
      rep.what = "VM entry failed, hardware reason " +
                 hex(run->fail_entry.hardware_entry_failure_reason) + " (KVM_EXIT_FAIL_ENTRY)";
      return true;
    case KVM_EXIT_MMIO:
      rep.end = VcpuEnd::kUnmappedMemory;
      rep.what = mmio_exit_text(run);
      return true;
    case KVM_EXIT_INTR:
      return false;
    case KVM_EXIT_HLT:
      rep.end = VcpuEnd::kUnexpectedExit;
      rep.what = "hlt before writing to the done port (KVM_EXIT_HLT)";
      return true;
    default:
      rep.end = VcpuEnd::kUnexpectedExit;
      rep.what = "unexpected exit reason " + std::to_string(run->exit_reason);
      return true;
  }
}

void Machine::Impl::finish_vcpu(unsigned index, Vcpu& vcpu, VcpuReport& rep) {
  auto sregs = vcpu.sregs();
  if (sregs) {
    rep.cr4 = sregs->cr4;
    rep.apic_base = sregs->apic_base;
  }
  if (auto x = vcpu.xcr0(); x) rep.xcr0 = *x;
  if (rep.end != VcpuEnd::kDone) {
    auto regs = vcpu.regs();
    if (regs && sregs) rep.dump = register_dump(*regs, *sregs);
  }
  rep.last_cpu = last_cpu_of(rep.tid);
  rep.allowed = current_affinity();
  if (config.on_vcpu_exit) config.on_vcpu_exit(index, rep.tid);
}

void Machine::Impl::vcpu_thread(unsigned index) {
  Vcpu& vcpu = vcpus[index];
  VcpuReport& rep = reports[index];
  rep.tid = current_tid();
  live_tids[index].store(rep.tid);
  std::string name = "vcpu " + std::to_string(index);
  ::pthread_setname_np(::pthread_self(), name.c_str());
  bool ok = true;
  if (const auto& pin = config.vcpus[index].pin) {
    rep.pinned = true;
    if (auto st = pin_current_thread(*pin); !st) {
      rep.end = VcpuEnd::kError;
      rep.what = st.error().message;
      ok = false;
    }
  }
  // The last exit was handled in user space: KVM finishes that instruction (e.g. advances RIP
  // past an `out`) only on the next KVM_RUN, so a pause first re-enters with immediate_exit set.
  bool io_pending = false;
  while (ok) {
    if (stop.load()) {
      rep.end = timed_out.load() ? VcpuEnd::kTimeout : VcpuEnd::kStopped;
      rep.what = timed_out.load()       ? "still running at the timeout; kicked out"
                 : stop_requested.load() ? "stopped on request"
                                         : "stopped: another vCPU faulted";
      break;
    }
    if (pause_requested.load()) {
      if (io_pending) {
        // -EINTR once the I/O is complete (KVM API: immediate_exit); completing it may need user
        // space again (the next part of a `rep outs`): that exit is handled like any other.
        __atomic_store_n(&vcpu.run_state()->immediate_exit, 1, __ATOMIC_SEQ_CST);
        bool ended = false;
        while (!ended && vcpu.run() == 0) {
          ++rep.exits;
          ended = handle_exit(vcpu, rep);
        }
        io_pending = false;
        if (ended) break;
      }
      park();
      if (!stop.load()) __atomic_store_n(&vcpu.run_state()->immediate_exit, 0, __ATOMIC_SEQ_CST);
      continue;
    }
    int r = vcpu.run();
    if (r == -EINTR || r == -EAGAIN) {
      io_pending = false;
      if (!stop.load() && !pause_requested.load()) __atomic_store_n(&vcpu.run_state()->immediate_exit, 0, __ATOMIC_SEQ_CST);
      continue;
    }
    if (r < 0) {
      rep.end = VcpuEnd::kError;
      rep.what = kvm_error("KVM_RUN", -r).message;
      break;
    }
    ++rep.exits;
    io_pending = true;
    if (handle_exit(vcpu, rep)) break;
  }
  finish_vcpu(index, vcpu, rep);
  bool fault = rep.end != VcpuEnd::kDone && rep.end != VcpuEnd::kTimeout && rep.end != VcpuEnd::kStopped;
  thread_done[index].store(true);
  std::lock_guard<std::mutex> lock(mu);
  ++finished;
  faulted = faulted || fault;
  cv.notify_all();
}

void Machine::Impl::kick_all(const std::vector<std::thread>& threads) {
  for (size_t i = 0; i < threads.size(); ++i) {
    if (thread_done[i].load()) continue;
    __atomic_store_n(&vcpus[i].run_state()->immediate_exit, 1, __ATOMIC_SEQ_CST);
    ::pthread_kill(const_cast<std::thread&>(threads[i]).native_handle(), kick_signal());
  }
}

Result<MachineReport> Machine::run() {
  Impl& m = *impl_;
  if (m.ran) return input_error("a Machine runs once");
  m.ran = true;
  kick_signal();
  size_t n = m.vcpus.size();
  m.reports.assign(n, VcpuReport{});
  m.thread_done = std::vector<std::atomic<bool>>(n);
  for (size_t i = 0; i < n; ++i) {
    m.reports[i].index = static_cast<unsigned>(i);
    m.reports[i].apic_id = m.config.vcpus[i].apic_id;
  }
  auto start = Clock::now();
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (size_t i = 0; i < n; ++i) threads.emplace_back([&m, i] { m.vcpu_thread(static_cast<unsigned>(i)); });
  {
    std::unique_lock<std::mutex> lock(m.mu);
    for (auto& t : threads) m.handles.push_back(t.native_handle());
    m.running = true;
    auto all_or_fault = [&] { return m.finished == n || m.faulted; };
    if (m.config.timeout_s > 0) {
      auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(m.config.timeout_s));
      if (!m.cv.wait_until(lock, deadline, all_or_fault)) m.timed_out.store(true);
    } else {
      m.cv.wait(lock, all_or_fault);
    }
    if (m.finished != n) {
      m.stop.store(true);
      while (m.finished != n) {
        lock.unlock();
        m.kick_all(threads);
        lock.lock();
        m.cv.wait_for(lock, std::chrono::milliseconds(5), [&] { return m.finished == n; });
      }
    }
  }
  for (auto& t : threads) t.join();
  {
    std::lock_guard<std::mutex> lock(m.mu);
    m.running = false;
    m.handles.clear();
  }
  MachineReport report;
  report.backend = m.kvm.backend();
  report.irqchip = m.vm->has_irqchip();
  report.prepared_ahead = m.prepared_ahead;
  report.mode = m.config.mode;
  report.timed_out = m.timed_out.load();
  report.run_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  report.vcpus = std::move(m.reports);
  return report;
}

}  // namespace cpumodel::vmm

namespace cpumodel::vmm {

// --- Pause, resume, stop and state (snapshots; vcpu_state.h does the ioctls) ---

Result<const StateCaps*> Machine::Impl::state_caps() {
  if (!caps) {
    auto c = probe_state_caps(kvm, *vm);
    if (!c) return c.error();
    caps = std::move(*c);
  }
  return &*caps;
}

// In a vCPU thread: wait while a pause is requested (and nothing asks to stop).
void Machine::Impl::park() {
  std::unique_lock<std::mutex> lock(mu);
  ++parked;
  cv.notify_all();
  cv.wait(lock, [&] { return !pause_requested.load() || stop.load(); });
  --parked;
}

void Machine::Impl::kick_handles() {
  for (size_t i = 0; i < handles.size(); ++i) {
    if (thread_done[i].load()) continue;
    __atomic_store_n(&vcpus[i].run_state()->immediate_exit, 1, __ATOMIC_SEQ_CST);
    ::pthread_kill(handles[i], kick_signal());
  }
}

Status Machine::pause() {
  Impl& m = *impl_;
  std::unique_lock<std::mutex> lock(m.mu);
  m.pause_requested.store(true);
  if (!m.running) return ok_status();
  size_t n = m.vcpus.size();
  // A kick can race with a vCPU thread clearing immediate_exit; kick again until all are parked.
  while (m.parked + m.finished < n) {
    m.kick_handles();
    m.cv.wait_for(lock, std::chrono::milliseconds(2), [&] { return m.parked + m.finished >= n; });
  }
  return ok_status();
}

void Machine::resume() {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  m.pause_requested.store(false);
  m.cv.notify_all();
}

void Machine::stop() {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  m.stop_requested.store(true);
  m.stop.store(true);
  m.cv.notify_all();
  if (m.running) m.kick_handles();
}

std::vector<std::pair<pid_t, bool>> Machine::vcpu_tids() const {
  const Impl& m = *impl_;
  std::vector<std::pair<pid_t, bool>> out;
  // Pinned or not is the configuration's (fixed at create()); only the thread ids change.
  for (size_t i = 0; i < m.live_tids.size(); ++i)
    out.emplace_back(m.live_tids[i].load(), m.config.vcpus[i].pin.has_value());
  return out;
}

bool Machine::paused() const {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  return m.pause_requested.load() && (!m.running || m.parked + m.finished >= m.vcpus.size());
}

Result<MachineState> Machine::save_state() {
  Impl& m = *impl_;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (m.running && !(m.pause_requested.load() && m.parked + m.finished >= m.vcpus.size()))
      return input_error("the machine is running: pause it before saving its state");
  }
  auto caps = m.state_caps();
  if (!caps) return caps.error();
  return save_machine_state(m.vcpus, *m.vm, **caps);
}

const Kvm& Machine::kvm() const { return impl_->kvm; }
CpuMode Machine::mode() const { return impl_->config.mode; }

}  // namespace cpumodel::vmm
