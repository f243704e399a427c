#include "cpumodel/vmm/x86_boot.h"

#include <array>

namespace cpumodel::vmm {
namespace {

constexpr uint64_t kPtePresent = 1ull << 0;
constexpr uint64_t kPteWritable = 1ull << 1;
constexpr uint64_t kPteLarge = 1ull << 7;
constexpr uint64_t kPteAddrMask = 0x000ffffffffff000ull;

constexpr uint64_t kCr0Pe = 1ull << 0, kCr0Mp = 1ull << 1, kCr0Et = 1ull << 4, kCr0Ne = 1ull << 5;
constexpr uint64_t kCr0Wp = 1ull << 16, kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pae = 1ull << 5;
constexpr uint64_t kEferLme = 1ull << 8, kEferLma = 1ull << 10;

// Descriptor flags: access byte in bits 0..7, G/DB/L/AVL nibble in bits 12..15.
constexpr uint16_t kFlagsCode64 = 0xa09b;  // G, L, present, DPL 0, code execute/read accessed
constexpr uint16_t kFlagsData = 0xc093;    // G, D/B, present, DPL 0, data read/write accessed
constexpr uint16_t kFlagsCode32 = 0xc09b;  // G, D/B, present, DPL 0, code execute/read accessed
constexpr uint16_t kFlagsTss = 0x808b;     // G, present, busy 32/64-bit TSS

std::array<uint64_t, 5> gdt_table() {
  return {0, gdt_entry(kFlagsCode64, 0, 0xfffff), gdt_entry(kFlagsData, 0, 0xfffff),
          gdt_entry(kFlagsCode32, 0, 0xfffff), gdt_entry(kFlagsTss, 0, 0xfffff)};
}

}  // namespace

const char* cpu_mode_name(CpuMode m) {
  return m == CpuMode::kLong64 ? "64-bit long mode" : "32-bit protected mode";
}

uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit) {
  return ((uint64_t{base} & 0xff000000ull) << 32) | ((uint64_t{flags} & 0xf0ffull) << 40) |
         ((uint64_t{limit} & 0x000f0000ull) << 32) | ((uint64_t{base} & 0x00ffffffull) << 16) |
         (uint64_t{limit} & 0x0000ffffull);
}

kvm_segment segment_from_gdt(uint64_t entry, uint16_t selector) {
  kvm_segment s{};
  s.base = ((entry >> 16) & 0xffffff) | (((entry >> 56) & 0xff) << 24);
  uint32_t limit = static_cast<uint32_t>((entry & 0xffff) | (((entry >> 48) & 0xf) << 16));
  s.g = (entry >> 55) & 1;
  s.limit = s.g ? (limit << 12) | 0xfff : limit;
  s.selector = selector;
  s.type = (entry >> 40) & 0xf;
  s.s = (entry >> 44) & 1;
  s.dpl = (entry >> 45) & 3;
  s.present = (entry >> 47) & 1;
  s.avl = (entry >> 52) & 1;
  s.l = (entry >> 53) & 1;
  s.db = (entry >> 54) & 1;
  s.unusable = s.present ? 0 : 1;
  return s;
}

Status write_boot_tables(const GuestMemory& mem, CpuMode mode) {
  auto gdt = gdt_table();
  if (auto st = mem.write_obj(BootLayout::kGdt, gdt); !st) return st;
  if (mode != CpuMode::kLong64) return ok_status();
  if (auto st = mem.fill(BootLayout::kPml4, 0, BootLayout::kCode - BootLayout::kPml4); !st) return st;
  if (auto st = mem.write_obj(BootLayout::kPml4, BootLayout::kPdpt | kPtePresent | kPteWritable); !st) return st;
  if (auto st = mem.write_obj(BootLayout::kPdpt, BootLayout::kPd | kPtePresent | kPteWritable); !st) return st;
  std::array<uint64_t, 512> pd{};
  for (uint64_t i = 0; i < pd.size(); ++i) pd[i] = (i << 21) | kPtePresent | kPteWritable | kPteLarge;
  return mem.write_obj(BootLayout::kPd, pd);
}

void apply_boot_sregs(CpuMode mode, kvm_sregs& sregs) {
  auto gdt = gdt_table();
  bool long_mode = mode == CpuMode::kLong64;
  sregs.gdt.base = BootLayout::kGdt;
  sregs.gdt.limit = sizeof(gdt) - 1;
  sregs.idt.base = 0;
  sregs.idt.limit = 0;  // no IDT: any exception escalates to a triple fault, which we report
  sregs.cs = long_mode ? segment_from_gdt(gdt[1], BootLayout::kCode64Sel)
                       : segment_from_gdt(gdt[3], BootLayout::kCode32Sel);
  kvm_segment data = segment_from_gdt(gdt[2], BootLayout::kDataSel);
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
  sregs.tr = segment_from_gdt(gdt[4], BootLayout::kTssSel);
  sregs.cr0 = kCr0Pe | kCr0Mp | kCr0Et | kCr0Ne | (long_mode ? kCr0Wp | kCr0Pg : 0);
  sregs.cr3 = long_mode ? BootLayout::kPml4 : 0;
  sregs.cr4 = long_mode ? kCr4Pae : 0;
  sregs.efer = long_mode ? kEferLme | kEferLma : 0;
}

Result<uint64_t> translate(const GuestMemory& mem, uint64_t cr3, uint64_t virt) {
  static const char* const kLevel[] = {"PML4E", "PDPTE", "PDE", "PTE"};
  uint64_t table = cr3 & kPteAddrMask;
  for (int level = 0; level < 4; ++level) {
    unsigned shift = 39 - 9 * level;
    uint64_t index = (virt >> shift) & 0x1ff;
    auto e = mem.read_obj<uint64_t>(table + index * 8);
    if (!e) return e.error();
    if (!(*e & kPtePresent))
      return input_error(std::string(kLevel[level]) + " for " + hex(virt) + " not present");
    if ((level == 1 || level == 2) && (*e & kPteLarge)) {
      uint64_t page = 1ull << shift;
      return (*e & kPteAddrMask & ~(page - 1)) | (virt & (page - 1));
    }
    table = *e & kPteAddrMask;
  }
  return table | (virt & 0xfff);
}

}  // namespace cpumodel::vmm
