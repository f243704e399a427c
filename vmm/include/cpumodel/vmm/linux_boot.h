// The Linux/x86 64-bit boot protocol (Documentation/arch/x86/boot.rst): parse and validate a
// bzImage's setup header, plan where the kernel, initrd, zero page and command line go, and write
// them (plus the boot GDT and page tables of x86_boot.h) into a GuestMemory. Pure: unit-tested on a
// plain buffer, no /dev/kvm.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cpumodel/cpuid/result.h"
#include "cpumodel/vmm/guest_memory.h"

namespace cpumodel::vmm {

// Guest-physical layout of a Linux guest. RAM starts at 0; what does not fit below kLowRamMax
// continues at 4 GiB, leaving [3 GiB, 4 GiB) for the IOAPIC and LAPIC. [0, kEbda) is free RAM
// (Linux's SMP trampoline and real-mode data need it); [kBiosStart, 1 MiB) is reserved and holds
// the ACPI tables and the MP table.
struct LinuxLayout {
  static constexpr uint64_t kZeroPage = 0x7000;     // struct boot_params
  static constexpr uint64_t kBootStack = 0x8ff0;
  static constexpr uint64_t kCmdline = 0x20000;
  static constexpr uint64_t kCmdlineMax = 0x10000;
  static constexpr uint64_t kEbda = 0x9fc00;
  static constexpr uint64_t kBiosStart = 0xe0000;
  static constexpr uint64_t kAcpiTables = 0xe0000;  // RSDP first (16-byte aligned), then the rest
  static constexpr uint64_t kMpTable = 0xf0000;     // MP floating pointer, then the config table
  static constexpr uint64_t kHighMemory = 0x100000;
  static constexpr uint64_t kLowRamMax = 0xc0000000;
  static constexpr uint64_t kHighRamStart = 1ull << 32;
  static constexpr uint64_t kMinRam = 2ull << 20;
};

// RAM below kLowRamMax / from 4 GiB up, for a guest of `ram_size` bytes.
uint64_t low_ram_size(uint64_t ram_size);
uint64_t high_ram_size(uint64_t ram_size);

enum class E820Type : uint32_t { kRam = 1, kReserved = 2, kAcpi = 3 };
struct E820Entry {
  uint64_t addr = 0;
  uint64_t size = 0;
  E820Type type = E820Type::kRam;
  bool operator==(const E820Entry&) const = default;
};
// The guest's memory map: low RAM up to the EBDA, the EBDA and BIOS area reserved, RAM from 1 MiB,
// RAM above 4 GiB when there is more than 3 GiB.
std::vector<E820Entry> linux_e820(uint64_t ram_size);

// What the loader needs from a bzImage's setup header (offsets 0x1f1.. of the image).
struct SetupHeader {
  uint16_t version = 0;          // 0x20f = protocol 2.15
  uint8_t setup_sects = 0;       // 512-byte sectors of real-mode setup after the boot sector
  uint8_t loadflags = 0;         // LOADED_HIGH (bit 0) for a bzImage
  uint32_t code32_start = 0;     // where the protected-mode kernel goes (0x100000)
  uint32_t initrd_addr_max = 0;  // highest address the initrd may occupy
  uint32_t kernel_alignment = 0;
  bool relocatable = false;
  uint16_t xloadflags = 0;       // XLF_KERNEL_64 (bit 0): 64-bit entry at code32_start + 0x200
  uint32_t cmdline_size = 0;     // longest command line, without the NUL
  uint64_t pref_address = 0;     // where a relocatable kernel prefers to run
  uint32_t init_size = 0;        // memory the kernel needs from its load address while booting
  size_t header_end = 0;         // image offset just past the setup header (0x202 + byte at 0x201)
  size_t setup_size = 0;         // (setup_sects + 1) * 512: where the protected-mode kernel starts
  size_t kernel_size = 0;        // image size - setup_size
  // "2.15"
  std::string version_text() const;
};

// Minimum boot protocol: 2.12 brought xloadflags and the 64-bit entry point.
constexpr uint16_t kMinBootProtocol = 0x20c;

// Errors (exit 2) name the file: "vmlinuz: not a bzImage (no \"HdrS\" magic at offset 0x202)",
// "...: boot protocol 2.10 is too old: the 64-bit entry needs 2.12 or newer", "...: a 32-bit kernel".
Result<SetupHeader> parse_setup_header(std::span<const uint8_t> image, const std::string& name);

// An uncompressed kernel: the ELF `vmlinux` the build leaves (or extract-vmlinux gives from a
// bzImage), as Firecracker and Cloud Hypervisor boot it. Its PT_LOAD segments go to their
// physical addresses and the 64-bit entry is the ELF entry (startup_64, identity-mapped, RSI =
// zero page), so the guest skips its own decompression: under TCG (the nested rig) that was most
// of the time to the first console byte.
struct VmlinuxSegment {
  uint64_t offset = 0, paddr = 0, filesz = 0, memsz = 0;
};
struct VmlinuxImage {
  uint64_t entry = 0;
  std::vector<VmlinuxSegment> segments;  // PT_LOAD, in file order
};
bool is_elf(std::span<const uint8_t> image);
// Errors (exit 2) name the file and what is wrong: "vmlinux: an ELF for machine 183, not x86-64",
// "...: PT_LOAD 2 lies outside the file", "...: the entry point 0x500 is in no loaded segment".
Result<VmlinuxImage> parse_vmlinux(std::span<const uint8_t> image, const std::string& name);

struct LinuxBootConfig {
  std::span<const uint8_t> kernel;   // the whole kernel file: a bzImage or an ELF vmlinux
  std::string kernel_name = "kernel";
  std::span<const uint8_t> initrd;   // may be empty
  std::string initrd_name = "initrd";
  std::string cmdline;
  uint64_t ram_size = 0;
  uint64_t acpi_rsdp = 0;            // boot_params.acpi_rsdp_addr (0: the guest scans for it)
  // kernel and initrd are read-only file mappings (MAP_PRIVATE, never written): their pages are
  // dropped (MADV_DONTNEED) as they are copied, so peak RSS stays guest RAM + a 1 MiB window.
  bool release_sources = false;
};

struct LinuxBootPlan {
  SetupHeader header;         // a vmlinux has none: the limits Linux/x86 takes by default
  bool elf = false;           // an ELF vmlinux: `segments` are loaded, not a protected-mode image
  std::vector<VmlinuxSegment> segments;
  uint64_t kernel_addr = 0;   // code32_start: the protected-mode kernel is copied here
  uint64_t kernel_end = 0;    // the highest byte the booting kernel may use + 1
  uint64_t initrd_addr = 0;
  uint64_t initrd_size = 0;
  uint64_t entry = 0;         // 64-bit entry: kernel_addr + 0x200
  uint64_t zero_page = LinuxLayout::kZeroPage;  // RSI at entry
  uint64_t cmdline_addr = LinuxLayout::kCmdline;
  std::vector<E820Entry> e820;
};

// Where everything goes, or an exit-2 error naming what does not fit ("-m 64M is too small for
// vmlinuz: it needs 80 MiB (loaded at 1 MiB, runs at 16 MiB, init_size 63.6 MiB)"). The initrd
// goes as high as it can: page-aligned, ending at or below initrd_addr_max and the end of low RAM,
// above the kernel.
Result<LinuxBootPlan> plan_linux_boot(const SetupHeader& header, const LinuxBootConfig& config);
// The same for an ELF vmlinux: loaded where its segments say (at or above 1 MiB, inside low RAM).
Result<LinuxBootPlan> plan_vmlinux_boot(const VmlinuxImage& image, const LinuxBootConfig& config);
// Either, by the kernel file's format.
Result<LinuxBootPlan> plan_kernel_boot(const LinuxBootConfig& config);

// Parses, plans, then writes the kernel, initrd, command line, zero page (boot_params with the
// setup header, e820 map, initrd and command line pointers, type_of_loader 0xff) and the 64-bit
// boot GDT and page tables into `low_ram` (guest-physical [0, low_ram_size)). A vmlinux gets the
// header fields a loader fills in (boot flag, "HdrS", kernel_alignment), as Firecracker writes them.
Result<LinuxBootPlan> write_linux_boot(const GuestMemory& low_ram, const LinuxBootConfig& config);

// QEMU's -m: "512" (MiB), "512M", "2G", "1048576K", "size=512M"; at least 2 MiB. Exit 2 otherwise.
Result<uint64_t> parse_memory_size(std::string_view text);

// "1 MiB", "63.6 MiB", "512 KiB".
std::string format_size(uint64_t bytes);

}  // namespace cpumodel::vmm
