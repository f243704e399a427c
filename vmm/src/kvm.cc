#include "cpumodel/vmm/kvm.h"

#include "cpumodel/cpuid/guest_cpuid.h"
#include "cpumodel/vmm/guest_memory.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace cpumodel::vmm {
namespace {

constexpr int kKvmApiVersion = 12;

// In C++ the uapi's __DECLARE_FLEX_ARRAY (an empty struct, 1 byte in C++, 0 in C) moves the
// entries of kvm_cpuid2 and kvm_msrs to offsets 12 and 16 and makes their sizeof 12 and 16, and the
// ioctl numbers encode that size: KVM_SET_CPUID2, KVM_GET_SUPPORTED_CPUID and KVM_GET_MSRS as the
// C++ headers spell them are not the kernel's (EINVAL). So: the kernel's (C) layout, an 8-byte
// header (nent/nmsrs + padding) then the entries, built as bytes, and the numbers C gets.
constexpr size_t kFlexHeader = 8;
constexpr unsigned long kIoctlGetSupportedCpuid = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x05, kFlexHeader);
constexpr unsigned long kIoctlSetCpuid2 = _IOC(_IOC_WRITE, KVMIO, 0x90, kFlexHeader);
constexpr unsigned long kIoctlGetMsrs = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x88, kFlexHeader);
static_assert(sizeof(kvm_cpuid_entry2) == 40 && sizeof(kvm_msr_entry) == 16);
constexpr size_t kMaxSupportedCpuid = 256;

const KvmCapability kCapabilities[] = {
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "Linux 2.6.25", true},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "Linux 2.6.25", true},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "Linux 4.11", true},
    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", "Linux 2.6.25", false},
    {KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR", "Linux 2.6.31", false},
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "Linux 2.6.23", false},
    {KVM_CAP_XCRS, "KVM_CAP_XCRS", "Linux 2.6.36", false},
};

std::string errno_text(int err) {
  return std::string(std::strerror(err)) + " (errno " + std::to_string(err) + ")";
}

Error open_error(const std::string& path, int err) {
  switch (err) {
    case ENOENT:
    case ENXIO:
    case ENODEV:
      return host_error(path + ": no such device; KVM is not available: load kvm_intel or kvm_amd "
                        "(modprobe kvm_intel / modprobe kvm_amd) and enable VT-x/AMD-V in the firmware setup");
    case EACCES:
    case EPERM:
      return host_error(path + ": permission denied; add the user to group kvm (usermod -aG kvm $USER, "
                        "then log in again) or run as root");
    default:
      return host_error(path + ": cannot open: " + errno_text(err));
  }
}

}  // namespace

const char* backend_name(Backend b) {
  switch (b) {
    case Backend::kIntel: return "kvm_intel";
    case Backend::kAmd: return "kvm_amd";
    case Backend::kPvm: return "kvm_pvm";
    case Backend::kUnknown: break;
  }
  return "unknown";
}

Backend detect_backend(const std::string& sys_module_dir) {
  static const std::pair<const char*, Backend> kModules[] = {
      {"kvm_pvm", Backend::kPvm}, {"kvm_intel", Backend::kIntel}, {"kvm_amd", Backend::kAmd}};
  for (const auto& [name, backend] : kModules) {
    struct stat st;
    if (::stat((sys_module_dir + "/" + name).c_str(), &st) == 0) return backend;
  }
  return Backend::kUnknown;
}

std::string default_kvm_device() {
  const char* env = std::getenv("CPUMODEL_KVM_DEVICE");
  return env && *env ? env : "/dev/kvm";
}

Error kvm_error(const std::string& what, int err) { return host_error(what + ": " + errno_text(err)); }

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = o.release();
  }
  return *this;
}

void Fd::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::span<const KvmCapability> kvm_capabilities() { return kCapabilities; }

Result<Kvm> Kvm::open(const std::string& path) {
  Kvm kvm;
  kvm.path_ = path;
  kvm.fd_ = Fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!kvm.fd_.valid()) return open_error(path, errno);
  int version = ::ioctl(kvm.fd(), KVM_GET_API_VERSION, 0);
  if (version < 0)
    return host_error(path + ": not a KVM device (KVM_GET_API_VERSION: " + errno_text(errno) + ")");
  if (version != kKvmApiVersion)
    return host_error(path + ": KVM API version " + std::to_string(version) + ", expected " +
                      std::to_string(kKvmApiVersion) + "; this kernel's KVM is not supported");
  for (const auto& c : kCapabilities) {
    if (c.required && !kvm.has(c.cap))
      return host_error(path + ": this KVM lacks " + c.name + " (needed; KVM in " + c.since +
                        " and newer has it): upgrade the kernel");
  }
  int size = ::ioctl(kvm.fd(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (size < static_cast<int>(sizeof(kvm_run))) return kvm_error(path + ": KVM_GET_VCPU_MMAP_SIZE", errno);
  kvm.mmap_size_ = static_cast<size_t>(size);
  kvm.backend_ = detect_backend();
  return kvm;
}

bool Kvm::has(int cap) const { return ::ioctl(fd(), KVM_CHECK_EXTENSION, cap) > 0; }

Result<CpuidTable> Kvm::supported_cpuid() const {
  std::vector<uint8_t> buf(kFlexHeader + kMaxSupportedCpuid * sizeof(kvm_cpuid_entry2));
  uint32_t nent = kMaxSupportedCpuid;
  std::memcpy(buf.data(), &nent, sizeof nent);
  if (::ioctl(fd(), kIoctlGetSupportedCpuid, buf.data()) < 0) return kvm_error("KVM_GET_SUPPORTED_CPUID", errno);
  return from_kvm_cpuid2(buf.data(), buf.size());
}

Result<Vm> Kvm::create_vm() const {
  int vm;
  do {
    vm = ::ioctl(fd(), KVM_CREATE_VM, 0);
  } while (vm < 0 && errno == EINTR);
  if (vm < 0) return kvm_error(path_ + ": KVM_CREATE_VM", errno);
  return Vm(Fd(vm), mmap_size_, path_);
}

Status Vm::map_memory(uint32_t slot, uint64_t guest_phys, void* host, uint64_t size) {
  kvm_userspace_memory_region region{};
  region.slot = slot;
  region.guest_phys_addr = guest_phys;
  region.memory_size = size;
  region.userspace_addr = reinterpret_cast<uint64_t>(host);
  if (::ioctl(fd(), KVM_SET_USER_MEMORY_REGION, &region) < 0)
    return kvm_error("KVM_SET_USER_MEMORY_REGION (slot " + std::to_string(slot) + ")", errno);
  return ok_status();
}

Status Vm::create_irqchip_if_supported() {
  if (::ioctl(fd(), KVM_CHECK_EXTENSION, KVM_CAP_IRQCHIP) <= 0) return ok_status();
  if (::ioctl(fd(), KVM_CREATE_IRQCHIP, 0) < 0) return kvm_error("KVM_CREATE_IRQCHIP", errno);
  irqchip_ = true;
  return ok_status();
}

Status Vm::set_tss_and_identity_map(uint64_t tss_addr, uint64_t identity_map_addr) {
  if (::ioctl(fd(), KVM_CHECK_EXTENSION, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0 &&
      ::ioctl(fd(), KVM_SET_IDENTITY_MAP_ADDR, &identity_map_addr) < 0)
    return kvm_error("KVM_SET_IDENTITY_MAP_ADDR", errno);
  if (::ioctl(fd(), KVM_CHECK_EXTENSION, KVM_CAP_SET_TSS_ADDR) > 0 &&
      ::ioctl(fd(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(tss_addr)) < 0)
    return kvm_error("KVM_SET_TSS_ADDR", errno);
  return ok_status();
}

Result<Vcpu> Vm::create_vcpu(uint32_t apic_id) {
  Fd fd(::ioctl(this->fd(), KVM_CREATE_VCPU, static_cast<unsigned long>(apic_id)));
  if (!fd.valid()) return kvm_error(device_ + ": KVM_CREATE_VCPU " + std::to_string(apic_id), errno);
  void* run = ::mmap(nullptr, mmap_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (run == MAP_FAILED) return kvm_error("mmap of kvm_run for vCPU " + std::to_string(apic_id), errno);
  return Vcpu(std::move(fd), apic_id, static_cast<kvm_run*>(run), mmap_size_);
}

Vcpu::Vcpu(Vcpu&& o) noexcept
    : fd_(std::move(o.fd_)), id_(o.id_), run_(o.run_), run_size_(o.run_size_) {
  o.run_ = nullptr;
}

Vcpu& Vcpu::operator=(Vcpu&& o) noexcept {
  if (this != &o) {
    unmap();
    fd_ = std::move(o.fd_);
    id_ = o.id_;
    run_ = o.run_;
    run_size_ = o.run_size_;
    o.run_ = nullptr;
  }
  return *this;
}

Vcpu::~Vcpu() { unmap(); }

void Vcpu::unmap() {
  if (run_) ::munmap(run_, run_size_);
  run_ = nullptr;
}

Status Vcpu::set_cpuid(const CpuidTable& table) {
  std::vector<uint8_t> buf = to_kvm_cpuid2(table);
  if (::ioctl(fd(), kIoctlSetCpuid2, buf.data()) < 0)
    return kvm_error("KVM_SET_CPUID2 (vCPU " + std::to_string(id_) + ", " + std::to_string(table.size()) +
                         " entries)",
                     errno);
  return ok_status();
}

Result<kvm_regs> Vcpu::regs() const {
  kvm_regs r{};
  if (::ioctl(fd(), KVM_GET_REGS, &r) < 0) return kvm_error("KVM_GET_REGS", errno);
  return r;
}

Status Vcpu::set_regs(const kvm_regs& r) {
  if (::ioctl(fd(), KVM_SET_REGS, &r) < 0) return kvm_error("KVM_SET_REGS", errno);
  return ok_status();
}

Result<kvm_sregs> Vcpu::sregs() const {
  kvm_sregs s{};
  if (::ioctl(fd(), KVM_GET_SREGS, &s) < 0) return kvm_error("KVM_GET_SREGS", errno);
  return s;
}

Status Vcpu::set_sregs(const kvm_sregs& s) {
  if (::ioctl(fd(), KVM_SET_SREGS, &s) < 0) return kvm_error("KVM_SET_SREGS", errno);
  return ok_status();
}

Status Vcpu::set_runnable() {
  kvm_mp_state mp{};
  mp.mp_state = KVM_MP_STATE_RUNNABLE;
  if (::ioctl(fd(), KVM_SET_MP_STATE, &mp) < 0) return kvm_error("KVM_SET_MP_STATE", errno);
  return ok_status();
}

Result<uint64_t> Vcpu::xcr0() const {
  kvm_xcrs xcrs{};
  if (::ioctl(fd(), KVM_GET_XCRS, &xcrs) < 0) {
    if (errno == EINVAL || errno == ENOTTY) return uint64_t{1};
    return kvm_error("KVM_GET_XCRS", errno);
  }
  for (uint32_t i = 0; i < xcrs.nr_xcrs && i < KVM_MAX_XCRS; ++i)
    if (xcrs.xcrs[i].xcr == 0) return static_cast<uint64_t>(xcrs.xcrs[i].value);
  return uint64_t{1};
}

Result<uint64_t> Vcpu::msr(uint32_t index) const {
  alignas(8) uint8_t buf[kFlexHeader + sizeof(kvm_msr_entry)] = {};
  uint32_t nmsrs = 1;
  kvm_msr_entry entry{};
  entry.index = index;
  std::memcpy(buf, &nmsrs, sizeof nmsrs);
  std::memcpy(buf + kFlexHeader, &entry, sizeof entry);
  int n = ::ioctl(fd(), kIoctlGetMsrs, buf);
  if (n < 0) return kvm_error("KVM_GET_MSRS", errno);
  if (n != 1) return host_error("KVM_GET_MSRS: MSR " + hex(index) + " not readable");
  std::memcpy(&entry, buf + kFlexHeader, sizeof entry);
  return static_cast<uint64_t>(entry.data);
}

int Vcpu::run() { return ::ioctl(fd(), KVM_RUN, 0) < 0 ? -errno : 0; }

}  // namespace cpumodel::vmm
