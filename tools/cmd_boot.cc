// cpumodel boot --cpu SPEC --smp SMP -m MEM --kernel bzImage|vmlinux [--initrd F] [--append CMDLINE]
//   [--pin V:C,...] [--affinity CPUS] [--serial stdio|file:PATH|none] [--qmp unix:PATH] [--timeout S]
// Boots a Linux guest with the guest CPUID tables `cpumodel cpuid` would build (filtered by this
// host's KVM, as QEMU's default `check`), the topology of --smp, and a QMP socket.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <malloc.h>
#include <optional>
#include <span>
#include <sstream>
#include <utility>

#include "command.h"
#include "linux_guest.h"
#include "cpumodel/cpuid/guest_cpuid.h"
#include "cpumodel/models/catalog.h"
#include "cpumodel/vmm/cpuset.h"
#include "cpumodel/vmm/linux_vm.h"
#include "cpumodel/vmm/qmp.h"
#include "cpumodel/vmm/verify.h"

namespace cpumodel::tools {
namespace {

// On kvm_pvm an unmodified kernel never gets to print (measured on Debian's 6.1 kernel: in 10-30 s,
// 0 exits to user space and 0 bytes on the UART; with earlyprintk the decompressor programs the
// UART (9 port writes) and is never heard of again), so the run is given up this soon, exit 3.
constexpr double kPvmWatchSeconds = 3.0;

// A kernel or initrd, mapped read-only: its pages are read from the page cache as the VM copies
// them into guest RAM and dropped right after (LinuxVmConfig::release_sources), so the VMM never
// holds a second copy (measured: reading Debian's 7.9 MB vmlinuz into a buffer put peak RSS
// 7.7 MiB above guest RAM; mapped and released, 0.5 MiB).
class MappedFile {
 public:
  static Result<MappedFile> open(const std::string& path, const char* what) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return input_error(std::string(what) + " " + path + ": cannot read: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return input_error(std::string(what) + " " + path + ": not a regular file");
    }
    MappedFile f;
    f.size_ = static_cast<size_t>(st.st_size);
    if (f.size_ > 0) {
      void* p = ::mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        return input_error(std::string(what) + " " + path + ": cannot map: " + std::strerror(errno));
      }
      f.data_ = static_cast<uint8_t*>(p);
    }
    ::close(fd);
    return f;
  }
  MappedFile() = default;
  MappedFile(MappedFile&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  MappedFile& operator=(MappedFile&&) = delete;
  ~MappedFile() {
    if (data_) ::munmap(data_, size_);
  }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

Result<vmm::LinuxVmConfig> vm_config(const po::variables_map& vm, const GuestCpuid& guest, const SerialSetup& serial) {
  vmm::LinuxVmConfig c;
  c.device = vm.count("kvm-device") ? vm["kvm-device"].as<std::string>() : vmm::default_kvm_device();
  auto ram = vmm::parse_memory_size(vm["m"].as<std::string>());
  if (!ram) return ram.error();
  c.ram_size = *ram;
  c.kernel_name = vm["kernel"].as<std::string>();
  c.cmdline = vm["append"].as<std::string>();
  c.places = guest.vcpus;
  c.tables = guest.tables;
  c.timeout_s = vm["timeout"].as<double>();
  c.serial_out_fd = serial.out_fd;
  c.serial_in_fd = serial.in_fd;
  if (c.timeout_s < 0) return input_error("--timeout must be a number of seconds (0: none)");
  if (vm.count("pin")) {
    auto pins = vmm::parse_pin_map(vm["pin"].as<std::string>());
    if (!pins) return pins.error();
    c.pins = std::move(*pins);
  }
  return c;
}

// Reads the files, builds the guest CPUID tables and creates the VM; the file buffers and the
// catalog are gone when it returns (the kernel and initrd live on in guest RAM).
Result<std::unique_ptr<vmm::LinuxVm>> create_vm(const po::variables_map& vm, const SmpConfig& smp,
                                                const SerialSetup& serial, std::string& model) {
  auto kernel_file = MappedFile::open(vm["kernel"].as<std::string>(), "--kernel");
  if (!kernel_file) return kernel_file.error();
  std::optional<MappedFile> initrd_file;
  if (vm.count("initrd")) {
    auto i = MappedFile::open(vm["initrd"].as<std::string>(), "--initrd");
    if (!i) return i.error();
    initrd_file.emplace(std::move(*i));
  }
  std::span<const uint8_t> kernel = kernel_file->bytes();
  std::span<const uint8_t> initrd = initrd_file ? initrd_file->bytes() : std::span<const uint8_t>{};
  // Bad kernels, sizes and command lines are reported before anything else is looked at.
  auto ram = vmm::parse_memory_size(vm["m"].as<std::string>());
  if (!ram) return ram.error();
  std::string kernel_name = vm["kernel"].as<std::string>();
  std::string initrd_name = vm.count("initrd") ? vm["initrd"].as<std::string>() : "";
  vmm::LinuxBootConfig boot_check{kernel, kernel_name, initrd, initrd_name, vm["append"].as<std::string>(), *ram, 0};
  if (auto plan = vmm::plan_kernel_boot(boot_check); !plan) return plan.error();
  std::string device = vm.count("kvm-device") ? vm["kvm-device"].as<std::string>() : vmm::default_kvm_device();
  auto host = vmm::kvm_host_profile(device);
  if (!host) return host.error();
  auto dirs = vm.count("models-dir") ? vm["models-dir"].as<std::vector<std::string>>() : std::vector<std::string>{};
  auto cat = Catalog::load_default(dirs);
  if (!cat) return cat.error();
  auto x = cat->expand(vm["cpu"].as<std::string>(), &*host, false);
  if (!x) return x.error();
  for (const auto& w : x->warnings) warn(w);
  model = x->cpu.model;
  auto guest = build_guest_cpuid(x->cpu, smp, &*host, {});
  if (!guest) return guest.error();
  for (const auto& w : guest->warnings) warn(w);
  auto config = vm_config(vm, *guest, serial);
  if (!config) return config.error();
  config->kernel = kernel;
  config->initrd = initrd;
  config->initrd_name = initrd_name;
  config->release_sources = true;  // both are read-only file mappings
  if (vmm::detect_backend() == vmm::Backend::kPvm) {
    config->pvm_watch_s = kPvmWatchSeconds;
    // CPUMODEL_PVM_WATCH=SECONDS (0: off) overrides it, e.g. to measure or for a PVM-aware kernel.
    if (const char* w = std::getenv("CPUMODEL_PVM_WATCH")) config->pvm_watch_s = std::atof(w);
  }
  return vmm::LinuxVm::create(std::move(*config));
}

int run(const po::variables_map& vm) {
  auto smp = parse_smp(vm["smp"].as<std::string>());
  if (!smp) return fail(smp.error());
  if (vm.count("affinity")) {
    auto cpus = vmm::CpuSet::parse(vm["affinity"].as<std::string>(), "--affinity");
    if (!cpus) return fail(cpus.error());
    if (auto st = vmm::apply_affinity(*cpus); !st) return fail(st.error());
  }
  auto serial = serial_setup(vm["serial"].as<std::string>());
  if (!serial) return fail(serial.error());
  std::unique_ptr<vmm::QmpServer> qmp;
  if (vm.count("qmp")) {
    auto s = vmm::QmpServer::listen(vm["qmp"].as<std::string>());
    if (!s) return fail(s.error());
    qmp = std::move(*s);
  }
  std::string model;
  auto machine = create_vm(vm, *smp, *serial, model);
  if (!machine) return fail(machine.error());
  ::malloc_trim(0);  // the catalog and file buffers go back to the system before the guest grows
  auto info = snapshot_info(vm["cpu"].as<std::string>(), model, *smp, "linux");
  int code = run_linux_guest(**machine, qmp.get(), info, vm.count("stats") > 0);
  qmp.reset();  // its thread may be inside a command on the VM: gone before the VM is
  if (serial->owned) ::close(serial->out_fd);
  return code;
}

void options(po::options_description& o, po::positional_options_description&) {
  o.add_options()("cpu", po::value<std::string>()->required(), "SPEC: MODEL[,+feat][,-feat][,feat=on|off]")(
      "smp", po::value<std::string>()->default_value("1"), "N[,maxcpus=M][,sockets=S][,dies=D][,cores=C][,threads=T]")(
      "m", po::value<std::string>()->default_value("256M"), "guest RAM (-m): 512M, 2G, or MiB")(
      "kernel", po::value<std::string>()->required(), "a Linux bzImage (e.g. /boot/vmlinuz-*) or an ELF vmlinux")(
      "initrd", po::value<std::string>(), "an initramfs")(
      "append", po::value<std::string>()->default_value("console=ttyS0"), "the kernel command line")(
      "pin", po::value<std::string>(), "pin vCPU threads: VCPU:CPUS,... (e.g. 0:2,1:3 or 0:2-3)")(
      "affinity", po::value<std::string>(), "confine the whole VMM to these host CPUs (e.g. 0-3)")(
      "serial", po::value<std::string>()->default_value("stdio"),
      "the UART: stdio (a terminal goes raw; Ctrl-A x quits), file:PATH (output only), none")(
      "qmp", po::value<std::string>(), "QMP control socket: unix:PATH (run control, snapshot-save)")(
      "timeout", po::value<double>()->default_value(0.0), "stop the guest after this many seconds (exit 1); 0: never")(
      "stats", "print run time, first serial output, peak RSS and the VMM's memory overhead on stderr")(
      "kvm-device", po::value<std::string>(), "KVM device (default $CPUMODEL_KVM_DEVICE or /dev/kvm)")(
      "models-dir", po::value<std::vector<std::string>>(), "extra directory of model YAML files");
}

const Registrar reg({"boot",
                     "boot --cpu SPEC [--smp SMP] [-m MEM] --kernel BZIMAGE [--initrd FILE] [--append CMDLINE] "
                     "[--pin V:C,...] [--affinity CPUS] [--serial stdio|file:PATH|none] [--qmp unix:PATH] "
                     "[--timeout S]",
                     "boot a Linux guest with this CPU model and topology (guest poweroff ends it, exit 0)",
                     "cpumodel boot -cpu Haswell-noTSX,+aes,-avx -smp 4,sockets=2,cores=2 -m 512M "
                     "-kernel /boot/vmlinuz-$(uname -r) -initrd initramfs.img -append 'console=ttyS0 quiet' "
                     "--qmp unix:/tmp/vm.qmp",
                     options, run});

}  // namespace
}  // namespace cpumodel::tools
