// RAII handles for /dev/kvm, a VM and a vCPU (with its mmap'ed kvm_run), the KVM capability
// table checked up front, and backend detection. Every failure is an Error a person can act on
// (exit code 3: this host cannot do it), as kvmtool's messages are.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cpumodel/cpuid/result.h"
#include "cpumodel/cpuid/table.h"

namespace cpumodel::vmm {

// Which KVM implementation is loaded (from /sys/module), named in every report.
enum class Backend : uint8_t { kIntel, kAmd, kPvm, kUnknown };
const char* backend_name(Backend b);  // "kvm_intel", "kvm_amd", "kvm_pvm", "unknown"
Backend detect_backend(const std::string& sys_module_dir = "/sys/module");

// $CPUMODEL_KVM_DEVICE if set, else /dev/kvm.
std::string default_kvm_device();

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  int release() { int f = fd_; fd_ = -1; return f; }
  void reset();
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// One row of the capability table: what we need, and which kernel first had it.
struct KvmCapability {
  int cap;            // KVM_CAP_*
  const char* name;   // "KVM_CAP_IMMEDIATE_EXIT"
  const char* since;  // "Linux 4.11"
  bool required;      // false: used when present (e.g. the in-kernel irqchip)
};
std::span<const KvmCapability> kvm_capabilities();

class Vcpu;
class Vm;

class Kvm {
 public:
  // Opens the device, checks the API version and every required capability.
  static Result<Kvm> open(const std::string& path = default_kvm_device());
  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  Backend backend() const { return backend_; }
  bool has(int cap) const;  // KVM_CHECK_EXTENSION > 0
  size_t vcpu_mmap_size() const { return mmap_size_; }
  Result<CpuidTable> supported_cpuid() const;  // KVM_GET_SUPPORTED_CPUID
  Result<Vm> create_vm() const;

 private:
  Fd fd_;
  std::string path_;
  Backend backend_ = Backend::kUnknown;
  size_t mmap_size_ = 0;
};

class Vm {
 public:
  int fd() const { return fd_.get(); }
  // KVM_SET_USER_MEMORY_REGION.
  Status map_memory(uint32_t slot, uint64_t guest_phys, void* host, uint64_t size);
  // In-kernel irqchip (PIC/IOAPIC/LAPIC) when the backend supports it; must precede vCPUs.
  Status create_irqchip_if_supported();
  bool has_irqchip() const { return irqchip_; }
  // VMX needs a TSS and an identity-map page below 4 GiB; harmless elsewhere.
  Status set_tss_and_identity_map(uint64_t tss_addr, uint64_t identity_map_addr);
  Result<Vcpu> create_vcpu(uint32_t apic_id);

 private:
  friend class Kvm;
  Vm(Fd fd, size_t mmap_size, const std::string& device) : fd_(std::move(fd)), mmap_size_(mmap_size), device_(device) {}
  Fd fd_;
  size_t mmap_size_ = 0;
  std::string device_;
  bool irqchip_ = false;
};

class Vcpu {
 public:
  Vcpu(Vcpu&& o) noexcept;
  Vcpu& operator=(Vcpu&& o) noexcept;
  Vcpu(const Vcpu&) = delete;
  Vcpu& operator=(const Vcpu&) = delete;
  ~Vcpu();

  int fd() const { return fd_.get(); }
  uint32_t id() const { return id_; }
  kvm_run* run_state() const { return run_; }

  Status set_cpuid(const CpuidTable& table);  // KVM_SET_CPUID2
  Result<kvm_regs> regs() const;
  Status set_regs(const kvm_regs& r);
  Result<kvm_sregs> sregs() const;
  Status set_sregs(const kvm_sregs& s);
  // With the in-kernel LAPIC, application processors wait for INIT/SIPI; this makes one runnable.
  Status set_runnable();
  Result<uint64_t> xcr0() const;               // KVM_GET_XCRS; 1 (x87) when unsupported
  Result<uint64_t> msr(uint32_t index) const;  // KVM_GET_MSRS, one MSR
  // KVM_RUN once. Returns 0, or -errno (EINTR when kicked).
  int run();

 private:
  friend class Vm;
  Vcpu(Fd fd, uint32_t id, kvm_run* run, size_t size) : fd_(std::move(fd)), id_(id), run_(run), run_size_(size) {}
  void unmap();
  Fd fd_;
  uint32_t id_ = 0;
  kvm_run* run_ = nullptr;
  size_t run_size_ = 0;
};

// "KVM_RUN: Invalid argument (errno 22)": an ioctl failure as a host error.
Error kvm_error(const std::string& what, int err);

}  // namespace cpumodel::vmm
