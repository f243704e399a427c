#include "cpumodel/vmm/linux_boot.h"

#include <sys/mman.h>
#include <unistd.h>

#include <asm/bootparam.h>
#include <elf.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "cpumodel/vmm/x86_boot.h"

namespace cpumodel::vmm {
namespace {

// Setup header offsets in the image (boot.rst, "The real-mode kernel header").
constexpr size_t kOffSetupSects = 0x1f1, kOffBootFlag = 0x1fe, kOffJump = 0x200, kOffMagic = 0x202;
constexpr size_t kHeaderStart = 0x1f1;
constexpr uint16_t kBootFlag = 0xaa55;
constexpr uint8_t kLoadedHigh = 0x01;
constexpr uint16_t kXlfKernel64 = 0x01;
constexpr uint64_t kEntry64Offset = 0x200;
constexpr uint8_t kLoaderUndefined = 0xff;  // type_of_loader: "no assigned ID"
constexpr uint64_t kPage = 4096;

template <class T>
T load(std::span<const uint8_t> b, size_t off) {
  T v;
  std::memcpy(&v, b.data() + off, sizeof v);
  return v;
}

uint64_t align_up(uint64_t v, uint64_t a) { return a ? (v + a - 1) / a * a : v; }
uint64_t align_down(uint64_t v, uint64_t a) { return a ? v / a * a : v; }

Error bad(const std::string& name, const std::string& what) { return input_error(name + ": " + what); }

}  // namespace

std::string format_size(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1ull << 30) && bytes % (1ull << 30) == 0)
    std::snprintf(buf, sizeof buf, "%llu GiB", static_cast<unsigned long long>(bytes >> 30));
  else if (bytes >= (1ull << 20) && bytes % (1ull << 20) == 0)
    std::snprintf(buf, sizeof buf, "%llu MiB", static_cast<unsigned long long>(bytes >> 20));
  else if (bytes >= (1ull << 20))
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  else if (bytes >= 1024 && bytes % 1024 == 0)
    std::snprintf(buf, sizeof buf, "%llu KiB", static_cast<unsigned long long>(bytes >> 10));
  else
    std::snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(bytes));
  return buf;
}

Result<uint64_t> parse_memory_size(std::string_view text) {
  std::string_view t = text;
  if (t.rfind("size=", 0) == 0) t.remove_prefix(5);
  uint64_t v = 0;
  size_t i = 0;
  for (; i < t.size() && t[i] >= '0' && t[i] <= '9'; ++i) {
    if (v > (1ull << 40)) return input_error("-m " + std::string(text) + ": too large");
    v = v * 10 + static_cast<uint64_t>(t[i] - '0');
  }
  std::string_view unit = t.substr(i);
  uint64_t mult = 0;
  if (unit.empty() || unit == "M" || unit == "m" || unit == "MiB") mult = 1ull << 20;
  else if (unit == "G" || unit == "g" || unit == "GiB") mult = 1ull << 30;
  else if (unit == "K" || unit == "k" || unit == "KiB") mult = 1ull << 10;
  if (i == 0 || mult == 0)
    return input_error("-m " + std::string(text) + ": expected a size such as 512M, 2G or 512 (MiB)");
  uint64_t bytes = v * mult;
  if (bytes < LinuxLayout::kMinRam || bytes > (1ull << 40))
    return input_error("-m " + std::string(text) + ": guest RAM must be between 2 MiB and 1 TiB");
  if (bytes % 4096) return input_error("-m " + std::string(text) + ": not a multiple of 4 KiB");
  return bytes;
}

std::string SetupHeader::version_text() const {
  return std::to_string(version >> 8) + "." + std::to_string(version & 0xff);
}

uint64_t low_ram_size(uint64_t ram_size) { return std::min(ram_size, LinuxLayout::kLowRamMax); }
uint64_t high_ram_size(uint64_t ram_size) { return ram_size - low_ram_size(ram_size); }

std::vector<E820Entry> linux_e820(uint64_t ram_size) {
  using L = LinuxLayout;
  std::vector<E820Entry> map = {
      {0, L::kEbda, E820Type::kRam},
      {L::kEbda, 0xa0000 - L::kEbda, E820Type::kReserved},
      {L::kBiosStart, L::kHighMemory - L::kBiosStart, E820Type::kReserved},
  };
  uint64_t low = low_ram_size(ram_size);
  if (low > L::kHighMemory) map.push_back({L::kHighMemory, low - L::kHighMemory, E820Type::kRam});
  if (uint64_t high = high_ram_size(ram_size)) map.push_back({L::kHighRamStart, high, E820Type::kRam});
  return map;
}

Result<SetupHeader> parse_setup_header(std::span<const uint8_t> image, const std::string& name) {
  if (image.size() < kOffMagic + 4)
    return bad(name, "not a bzImage (" + std::to_string(image.size()) + " bytes, too short for a setup header)");
  if (std::memcmp(image.data() + kOffMagic, "HdrS", 4) != 0)
    return bad(name, "neither a bzImage nor an ELF vmlinux (no \"HdrS\" magic at offset 0x202; a compressed file?)");
  SetupHeader h;
  h.version = load<uint16_t>(image, 0x206);
  if (h.version < kMinBootProtocol)
    return bad(name, "boot protocol " + h.version_text() +
                         " is too old: the 64-bit entry point needs protocol 2.12 or newer (Linux 3.8+)");
  h.header_end = kOffJump + 2 + image[kOffJump + 1];
  if (h.header_end < 0x268 || image.size() < h.header_end)
    return bad(name, "truncated setup header (ends at " + hex(h.header_end) + ", file has " +
                         std::to_string(image.size()) + " bytes)");
  if (load<uint16_t>(image, kOffBootFlag) != kBootFlag)
    return bad(name, "not a bzImage (no 0xAA55 boot flag at offset 0x1fe)");
  h.setup_sects = image[kOffSetupSects];
  h.loadflags = image[0x211];
  h.code32_start = load<uint32_t>(image, 0x214);
  h.initrd_addr_max = load<uint32_t>(image, 0x22c);
  h.kernel_alignment = load<uint32_t>(image, 0x230);
  h.relocatable = image[0x234] != 0;
  h.xloadflags = load<uint16_t>(image, 0x236);
  h.cmdline_size = load<uint32_t>(image, 0x238);
  h.pref_address = load<uint64_t>(image, 0x258);
  h.init_size = load<uint32_t>(image, 0x260);
  if (!(h.loadflags & kLoadedHigh))
    return bad(name, "a zImage (loaded low, LOADED_HIGH clear): only bzImages are supported");
  if (!(h.xloadflags & kXlfKernel64))
    return bad(name, "a 32-bit kernel (xloadflags lacks XLF_KERNEL_64): no 64-bit entry point");
  h.setup_size = (size_t{h.setup_sects ? h.setup_sects : 4u} + 1) * 512;
  if (image.size() <= h.setup_size)
    return bad(name, "truncated: " + std::to_string(image.size()) + " bytes, but the setup code alone takes " +
                         std::to_string(h.setup_size));
  h.kernel_size = image.size() - h.setup_size;
  if (h.init_size < h.kernel_size)
    return bad(name, "inconsistent setup header: init_size " + hex(h.init_size) + " is below the kernel's size " +
                         hex(h.kernel_size));
  return h;
}

namespace {

// The command line, memory map and initrd, once the kernel's place is known.
Result<LinuxBootPlan> plan_rest(LinuxBootPlan p, const LinuxBootConfig& c) {
  const SetupHeader& h = p.header;
  uint64_t low = low_ram_size(c.ram_size);
  if (c.cmdline.size() > h.cmdline_size || c.cmdline.size() >= LinuxLayout::kCmdlineMax)
    return input_error("--append: the command line has " + std::to_string(c.cmdline.size()) +
                       " characters; " + c.kernel_name + " accepts at most " + std::to_string(h.cmdline_size));
  if (c.cmdline.find('\0') != std::string::npos) return input_error("--append: the command line contains a NUL");
  p.e820 = linux_e820(c.ram_size);
  p.initrd_size = c.initrd.size();
  if (p.initrd_size) {
    uint64_t top = std::min<uint64_t>(uint64_t{h.initrd_addr_max} + 1, low);
    uint64_t addr = top >= p.initrd_size ? align_down(top - p.initrd_size, kPage) : 0;
    if (top < p.initrd_size || addr < align_up(p.kernel_end, kPage))
      return bad(c.initrd_name, format_size(p.initrd_size) + " does not fit in guest RAM between the kernel's end (" +
                                    format_size(align_up(p.kernel_end, kPage)) + ") and " + format_size(top) +
                                    " (initrd_addr_max and -m " + format_size(c.ram_size) + "); raise -m");
    p.initrd_addr = addr;
  }
  return p;
}

}  // namespace

Result<LinuxBootPlan> plan_linux_boot(const SetupHeader& h, const LinuxBootConfig& c) {
  LinuxBootPlan p;
  p.header = h;
  p.kernel_addr = h.code32_start ? h.code32_start : LinuxLayout::kHighMemory;
  if (p.kernel_addr < LinuxLayout::kHighMemory)
    return bad(c.kernel_name, "code32_start " + hex(h.code32_start) + " is below 1 MiB");
  p.entry = p.kernel_addr + kEntry64Offset;
  // Where the kernel decompresses and runs (arch/x86/boot/compressed/head_64.S): the load address
  // rounded up to kernel_alignment, at least pref_address (LOAD_PHYSICAL_ADDR); it needs init_size there.
  uint64_t run = h.relocatable ? std::max(align_up(p.kernel_addr, h.kernel_alignment), h.pref_address)
                               : std::max<uint64_t>(h.pref_address, p.kernel_addr);
  p.kernel_end = std::max(p.kernel_addr + h.kernel_size, run + h.init_size);
  uint64_t low = low_ram_size(c.ram_size);
  if (p.kernel_end > low)
    return bad(c.kernel_name, "does not fit in " + format_size(c.ram_size) + " of guest RAM: it needs " +
                                  format_size(align_up(p.kernel_end, 1 << 20)) + " (loaded at " +
                                  format_size(p.kernel_addr) + ", runs at " + format_size(run) + ", init_size " +
                                  format_size(h.init_size) + "); raise -m");
  return plan_rest(std::move(p), c);
}

bool is_elf(std::span<const uint8_t> image) {
  return image.size() >= SELFMAG && std::memcmp(image.data(), ELFMAG, SELFMAG) == 0;
}

Result<VmlinuxImage> parse_vmlinux(std::span<const uint8_t> image, const std::string& name) {
  if (!is_elf(image)) return bad(name, "not an ELF file");
  if (image.size() < sizeof(Elf64_Ehdr)) return bad(name, "truncated ELF header");
  auto eh = load<Elf64_Ehdr>(image, 0);
  if (eh.e_ident[EI_CLASS] != ELFCLASS64) return bad(name, "a 32-bit ELF: only a 64-bit vmlinux can be booted");
  if (eh.e_ident[EI_DATA] != ELFDATA2LSB) return bad(name, "a big-endian ELF");
  if (eh.e_machine != EM_X86_64)
    return bad(name, "an ELF for machine " + std::to_string(eh.e_machine) + ", not x86-64");
  if (eh.e_type != ET_EXEC) return bad(name, "an ELF of type " + std::to_string(eh.e_type) + ", not an executable vmlinux");
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phoff > image.size() ||
      (image.size() - eh.e_phoff) / sizeof(Elf64_Phdr) < eh.e_phnum)
    return bad(name, "its program headers lie outside the file");
  VmlinuxImage out;
  out.entry = eh.e_entry;
  bool entry_loaded = false;
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    auto ph = load<Elf64_Phdr>(image, eh.e_phoff + i * sizeof(Elf64_Phdr));
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    std::string which = "PT_LOAD " + std::to_string(out.segments.size());
    if (ph.p_offset > image.size() || image.size() - ph.p_offset < ph.p_filesz)
      return bad(name, which + " lies outside the file");
    if (ph.p_filesz > ph.p_memsz) return bad(name, which + " has more file bytes than memory");
    if (ph.p_paddr + ph.p_memsz < ph.p_paddr) return bad(name, which + " wraps around the address space");
    out.segments.push_back({ph.p_offset, ph.p_paddr, ph.p_filesz, ph.p_memsz});
    entry_loaded = entry_loaded || (eh.e_entry >= ph.p_paddr && eh.e_entry < ph.p_paddr + ph.p_memsz);
  }
  if (out.segments.empty()) return bad(name, "an ELF with nothing to load (no PT_LOAD segment)");
  // Overlapping segments would overwrite each other (and bound the loader's work by RAM only
  // once they do not): refused.
  std::vector<VmlinuxSegment> by_addr = out.segments;
  std::sort(by_addr.begin(), by_addr.end(), [](const auto& a, const auto& b) { return a.paddr < b.paddr; });
  for (size_t i = 1; i < by_addr.size(); ++i)
    if (by_addr[i].paddr < by_addr[i - 1].paddr + by_addr[i - 1].memsz)
      return bad(name, "PT_LOAD segments overlap at " + hex(by_addr[i].paddr));
  if (!entry_loaded) return bad(name, "the entry point " + hex(eh.e_entry) + " is in no loaded segment");
  return out;
}

Result<LinuxBootPlan> plan_vmlinux_boot(const VmlinuxImage& image, const LinuxBootConfig& c) {
  LinuxBootPlan p;
  p.elf = true;
  p.segments = image.segments;
  // No setup header: the limits of a current x86-64 bzImage (2.15), which the kernel proper shares.
  p.header.initrd_addr_max = 0x7fffffff;
  p.header.kernel_alignment = 0x1000000;
  p.header.cmdline_size = 2047;  // COMMAND_LINE_SIZE - 1
  p.kernel_addr = UINT64_MAX;
  for (const auto& seg : image.segments) {
    p.kernel_addr = std::min(p.kernel_addr, seg.paddr);
    p.kernel_end = std::max(p.kernel_end, seg.paddr + seg.memsz);
  }
  p.entry = image.entry;
  if (p.kernel_addr < LinuxLayout::kHighMemory)
    return bad(c.kernel_name, "a segment loads at " + hex(p.kernel_addr) + ", below 1 MiB");
  // startup_64 runs where it was loaded only from a 2 MiB boundary, and the boot page tables map
  // the first GiB: anything else would end in a silent triple fault.
  if (p.kernel_addr % (2u << 20) != 0)
    return bad(c.kernel_name, "loads at " + hex(p.kernel_addr) + ", not on a 2 MiB boundary as a 64-bit Linux must");
  if (p.entry >= BootLayout::kIdentityMapped)
    return bad(c.kernel_name, "the entry point " + hex(p.entry) + " is above the first GiB the boot page tables map");
  if (p.kernel_end > low_ram_size(c.ram_size))
    return bad(c.kernel_name, "does not fit in " + format_size(c.ram_size) + " of guest RAM: its segments end at " +
                                  format_size(align_up(p.kernel_end, 1 << 20)) + "; raise -m");
  return plan_rest(std::move(p), c);
}

Result<LinuxBootPlan> plan_kernel_boot(const LinuxBootConfig& c) {
  if (is_elf(c.kernel)) {
    auto image = parse_vmlinux(c.kernel, c.kernel_name);
    if (!image) return image.error();
    return plan_vmlinux_boot(*image, c);
  }
  auto h = parse_setup_header(c.kernel, c.kernel_name);
  if (!h) return h.error();
  return plan_linux_boot(*h, c);
}

namespace {

boot_params zero_page(std::span<const uint8_t> image, const LinuxBootPlan& p, const LinuxBootConfig& c) {
  boot_params bp;
  std::memset(&bp, 0, sizeof bp);
  if (p.elf) {
    // What a loader of an uncompressed kernel writes (the kernel proper reads no more of the
    // header than these, the pointers below and the e820 map): boot.rst's required fields.
    bp.hdr.boot_flag = kBootFlag;
    bp.hdr.header = 0x53726448;  // "HdrS"
    bp.hdr.kernel_alignment = p.header.kernel_alignment;
    bp.hdr.cmdline_size = p.header.cmdline_size;
    bp.hdr.initrd_addr_max = p.header.initrd_addr_max;
  } else {
    size_t n = std::min(p.header.header_end - kHeaderStart, sizeof(setup_header));
    std::memcpy(&bp.hdr, image.data() + kHeaderStart, n);
  }
  bp.hdr.type_of_loader = kLoaderUndefined;
  bp.hdr.vid_mode = 0xffff;  // "normal"
  bp.hdr.loadflags &= static_cast<uint8_t>(~CAN_USE_HEAP);
  bp.hdr.setup_data = 0;
  bp.hdr.ramdisk_image = static_cast<uint32_t>(p.initrd_addr);
  bp.hdr.ramdisk_size = static_cast<uint32_t>(p.initrd_size);
  bp.ext_ramdisk_image = static_cast<uint32_t>(p.initrd_addr >> 32);
  bp.ext_ramdisk_size = static_cast<uint32_t>(p.initrd_size >> 32);
  bp.hdr.cmd_line_ptr = static_cast<uint32_t>(p.cmdline_addr);
  bp.ext_cmd_line_ptr = static_cast<uint32_t>(p.cmdline_addr >> 32);
  bp.acpi_rsdp_addr = c.acpi_rsdp;
  bp.e820_entries = static_cast<uint8_t>(p.e820.size());
  for (size_t i = 0; i < p.e820.size() && i < E820_MAX_ENTRIES_ZEROPAGE; ++i) {
    bp.e820_table[i].addr = p.e820[i].addr;
    bp.e820_table[i].size = p.e820[i].size;
    bp.e820_table[i].type = static_cast<uint32_t>(p.e820[i].type);
  }
  return bp;
}

// Copies `src` into guest RAM at `gpa` in 1 MiB pieces; with `release`, each piece of the source
// (a read-only file mapping) is dropped from memory once copied.
Status write_released(const GuestMemory& ram, uint64_t gpa, std::span<const uint8_t> src, bool release) {
  constexpr size_t kPiece = 1u << 20;
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  for (size_t off = 0; off < src.size(); off += kPiece) {
    auto piece = src.subspan(off, std::min(kPiece, src.size() - off));
    if (auto st = ram.write(gpa + off, piece); !st) return st;
    if (!release) continue;
    // Whole pages inside this piece only: the neighbours may still be read.
    uintptr_t lo = (reinterpret_cast<uintptr_t>(piece.data()) + page - 1) & ~(page - 1);
    uintptr_t hi = (reinterpret_cast<uintptr_t>(piece.data() + piece.size())) & ~(page - 1);
    if (hi > lo) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
  }
  return ok_status();
}

}  // namespace

Result<LinuxBootPlan> write_linux_boot(const GuestMemory& low_ram, const LinuxBootConfig& c) {
  auto plan = plan_kernel_boot(c);
  if (!plan) return plan.error();
  if (low_ram.base() != 0 || low_ram.size() < low_ram_size(c.ram_size))
    return input_error("guest memory " + hex(low_ram.base()) + "+" + hex(low_ram.size()) + " does not hold " +
                       format_size(low_ram_size(c.ram_size)) + " of low RAM");
  if (auto st = write_boot_tables(low_ram, CpuMode::kLong64); !st) return st.error();
  if (plan->elf) {
    for (const auto& seg : plan->segments) {
      if (auto st = write_released(low_ram, seg.paddr, c.kernel.subspan(seg.offset, seg.filesz), c.release_sources); !st)
        return st.error();
      if (seg.memsz > seg.filesz)
        if (auto st = low_ram.fill(seg.paddr + seg.filesz, 0, seg.memsz - seg.filesz); !st) return st.error();
    }
  } else if (auto st = write_released(low_ram, plan->kernel_addr, c.kernel.subspan(plan->header.setup_size),
                                      c.release_sources);
             !st) {
    return st.error();
  }
  if (plan->initrd_size)
    if (auto st = write_released(low_ram, plan->initrd_addr, c.initrd, c.release_sources); !st) return st.error();
  std::vector<uint8_t> cmdline(c.cmdline.begin(), c.cmdline.end());
  cmdline.push_back(0);
  if (auto st = low_ram.write(plan->cmdline_addr, cmdline); !st) return st.error();
  boot_params bp = zero_page(c.kernel, *plan, c);
  if (auto st = low_ram.write_obj(plan->zero_page, bp); !st) return st.error();
  return plan;
}

}  // namespace cpumodel::vmm
