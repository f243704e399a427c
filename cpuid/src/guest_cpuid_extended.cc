// Extended (0x8000xxxx) and Centaur (0xC000xxxx) leaves of the guest CPUID builder, QEMU 7.2's
// values (target/i386/cpu.c cpu_x86_cpuid).
#include <algorithm>
#include <cstring>
#include <set>

#include "guest_cpuid_build.h"

namespace cpumodel::guest {
namespace {

// QEMU's fixed TLB description: L1 2M/4K D and I TLBs 1-way, 255 entries; L2 4K TLBs 4-way, 512.
constexpr uint32_t kL1Tlb = 0x01FF01FF;
constexpr uint32_t kL2Tlb4k = 0x42004200;

void put_nonzero(CpuidTable& t, uint32_t leaf, uint32_t subleaf, const CpuidRegs& r) {
  if (!r.zero()) t.set(leaf, subleaf, r);
}

void ext_0(const Build& b, CpuidTable& t) {
  CpuidRegs r{b.xlevel, 0, 0, 0};
  std::memcpy(&r.ebx, b.cpu.vendor.data(), 4);
  std::memcpy(&r.edx, b.cpu.vendor.data() + 4, 4);
  std::memcpy(&r.ecx, b.cpu.vendor.data() + 8, 4);
  t.set(0x80000000, 0, r);
}

void ext_1(const Build& b, CpuidTable& t) {
  CpuidRegs r = b.word_regs(0x80000001, 0);
  r.eax = b.version;
  r.ebx = 0;
  t.set(0x80000001, 0, r);
}

// The brand string: model-id, NUL-padded to 48 bytes, four bytes a register.
void ext_brand(const Build& b, CpuidTable& t) {
  char brand[48] = {};
  std::memcpy(brand, b.cpu.model_id.data(), std::min<size_t>(b.cpu.model_id.size(), sizeof brand));
  for (uint32_t i = 0; i < 3; ++i) {
    uint32_t leaf = 0x80000002 + i;
    if (leaf > b.xlevel) break;
    CpuidRegs r;
    std::memcpy(&r.eax, brand + 16 * i, 4);
    std::memcpy(&r.ebx, brand + 16 * i + 4, 4);
    std::memcpy(&r.ecx, brand + 16 * i + 8, 4);
    std::memcpy(&r.edx, brand + 16 * i + 12, 4);
    put_nonzero(t, leaf, 0, r);
  }
}

void ext_5(const Build& b, CpuidTable& t) {
  t.set(0x80000005, 0,
        {kL1Tlb, kL1Tlb, encode_cpuid80000005(b.caches.amd.l1d), encode_cpuid80000005(b.caches.amd.l1i)});
}

void ext_6(const Build& b, CpuidTable& t) {
  CpuidRegs r{0, kL2Tlb4k, 0, 0};
  const CacheSet& c = b.caches.amd;
  encode_cpuid80000006(c.l2, c.l3 ? &*c.l3 : nullptr, r.ecx, r.edx);
  t.set(0x80000006, 0, r);
}

void ext_8(const Build& b, CpuidTable& t) {
  CpuidRegs r = b.word_regs(0x80000008, 0);
  r.eax = b.phys_bits | b.virt_bits << 8;
  // Logical processors per die minus one, and the APIC ID bits below the package field. QEMU
  // fills it for every vendor; NC capped to its 8 bits.
  unsigned n = b.logical_per_die();
  r.ecx = n > 1 ? b.topo.pkg_offset() << 12 | (std::min(n, 256u) - 1) : 0;
  r.edx = 0;
  t.set(0x80000008, 0, r);
}

void ext_a(const Build& b, CpuidTable& t) {
  if (!b.has("svm")) return;
  t.set(0x8000000a, 0, {1, 0x10, 0, b.word_regs(0x8000000a, 0).edx});  // SVM rev 1, 16 ASIDs
}

void ext_1d(const Build& b, CpuidTable& t) {
  const CacheSet& c = b.caches.amd;
  uint32_t s = 0;
  for (const Cache* cache : {&c.l1d, &c.l1i, &c.l2})
    t.set(0x8000001d, s++, encode_cpuid8000001d(*cache, b.topo));
  if (c.l3) t.set(0x8000001d, s++, encode_cpuid8000001d(*c.l3, b.topo));
  t.set(0x8000001d, s, {});
}

using Emit = void (*)(const Build&, CpuidTable&);
struct LeafRule {
  uint32_t leaf;
  Emit emit;
};

constexpr LeafRule kExtendedRules[] = {
    {0x80000000, ext_0}, {0x80000001, ext_1}, {0x80000002, ext_brand}, {0x80000003, nullptr},
    {0x80000004, nullptr}, {0x80000005, ext_5}, {0x80000006, ext_6},  {0x80000008, ext_8},
    {0x8000000a, ext_a}, {0x8000001d, ext_1d}, {0x8000001e, nullptr}, {0x8000001f, nullptr},
};

// Centaur/Zhaoxin leaves: every leaf up to xlevel2 is an entry (QEMU keeps even the zero ones).
void emit_centaur(const Build& b, CpuidTable& t) {
  if (b.xlevel2 < 0xC0000000u) return;
  uint32_t last = std::min<uint32_t>(b.xlevel2, 0xC00000FFu);  // QEMU's entry array holds ~80 anyway
  for (uint32_t leaf = 0xC0000000u; leaf <= last; ++leaf) {
    CpuidRegs r = b.word_regs(leaf, 0);
    if (leaf == 0xC0000000u) r = {b.xlevel2, 0, 0, 0};
    if (leaf == 0xC0000001u) r.eax = b.version;
    t.set(leaf, 0, r);
  }
}

}  // namespace

void emit_extended(const Build& b, CpuidTable& t) {
  std::set<uint32_t> done;
  if (b.xlevel >= 0x80000000u)
    for (const auto& r : kExtendedRules)
      if (r.leaf <= b.xlevel) {
        if (r.emit) r.emit(b, t);
        done.insert(r.leaf);
      }
  for (const auto& [key, regs] : b.words.entries())
    if (key.leaf >= 0x80000000u && key.leaf < 0xC0000000u && key.leaf <= b.xlevel && !done.count(key.leaf))
      put_nonzero(t, key.leaf, key.subleaf, regs);
  emit_centaur(b, t);
}

}  // namespace cpumodel::guest
