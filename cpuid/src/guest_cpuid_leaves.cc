// Leaf emitters of the guest CPUID builder: one small function per leaf QEMU 7.2 computes
// (target/i386/cpu.c cpu_x86_cpuid), in a table by leaf. Which subleaves become entries follows
// QEMU's KVM_SET_CPUID2 array (kvm_arch_init_vcpu): all-zero plain leaves are left out, leaf 4 and
// 0x8000001D end with their all-zero terminator, 0xB/0x1F with their "invalid" level, 0xD keeps the
// subleaves whose EAX is not zero, leaf 7 has subleaves 0..2.
#include <algorithm>
#include <cstring>
#include <set>

#include "guest_cpuid_build.h"

namespace cpumodel::guest {
namespace {

constexpr uint32_t kLevelSmt = 1u << 8, kLevelCore = 2u << 8, kLevelDie = 5u << 8;

void put_nonzero(CpuidTable& t, uint32_t leaf, uint32_t subleaf, const CpuidRegs& r) {
  if (!r.zero()) t.set(leaf, subleaf, r);
}

CpuidRegs vendor_regs(const Build& b, uint32_t eax) {
  CpuidRegs r{eax, 0, 0, 0};
  std::memcpy(&r.ebx, b.cpu.vendor.data(), 4);
  std::memcpy(&r.edx, b.cpu.vendor.data() + 4, 4);
  std::memcpy(&r.ecx, b.cpu.vendor.data() + 8, 4);
  return r;
}

void leaf_0(const Build& b, CpuidTable& t) { t.set(0, 0, vendor_regs(b, b.level)); }

void leaf_1(const Build& b, CpuidTable& t) {
  CpuidRegs r = b.word_regs(1, 0);
  r.eax = b.version;
  r.ebx = 8u << 8;  // CLFLUSH line size in quadwords; the APIC ID goes in bits 31:24 per vCPU
  // QEMU counts the logical processors of a die here (nr_cores * nr_threads); capped to the field.
  if (b.logical_per_die() > 1) r.ebx |= std::min(b.logical_per_die(), 255u) << 16;
  t.set(1, 0, r);
}

void leaf_2(const Build& b, CpuidTable& t) {
  // AMD gets zeros (QEMU's vendor-cpuid-only, machine types >= 6.1); QEMU keeps the entry.
  if (b.amd) return t.set(2, 0, {});
  const CacheSet& c = b.caches.cpuid2;
  uint32_t edx = uint32_t{cpuid2_descriptor(c.l1d)} << 16 | uint32_t{cpuid2_descriptor(c.l1i)} << 8 |
                 cpuid2_descriptor(c.l2);
  t.set(2, 0, {1, 0, c.l3 ? cpuid2_descriptor(*c.l3) : 0u, edx});
}

void leaf_4(const Build& b, CpuidTable& t) {
  if (b.amd) return t.set(4, 0, {});
  const CacheSet& c = b.caches.cpuid4;
  unsigned cores = b.topo.cores;
  // QEMU 7.2: L1 counts one APIC ID, L2 the threads of a core, L3 the APIC IDs of a die.
  t.set(4, 0, encode_cpuid4(c.l1d, 1, cores));
  t.set(4, 1, encode_cpuid4(c.l1i, 1, cores));
  t.set(4, 2, encode_cpuid4(c.l2, b.topo.threads, cores));
  uint32_t next = 3;
  if (c.l3) t.set(4, next++, encode_cpuid4(*c.l3, 1u << b.topo.die_offset(), cores));
  t.set(4, next, {});
}

void leaf_5(const Build&, CpuidTable& t) { t.set(5, 0, {0, 0, 3, 0}); }  // MWAIT: EMX | IBE

void leaf_7(const Build& b, CpuidTable& t) {
  CpuidRegs r = b.word_regs(7, 0);
  r.eax = b.func7;
  t.set(7, 0, r);
  t.set(7, 1, b.word_regs(7, 1));
  t.set(7, 2, b.word_regs(7, 2));
}

void leaf_a(const Build& b, CpuidTable& t) {
  if (b.cpu.pmu && b.host) put_nonzero(t, 0xa, 0, b.host->guest_cpuid().get(0xa));
}

void leaf_b(const Build& b, CpuidTable& t) {
  const Topology& topo = b.topo;
  t.set(0xb, 0, {topo.core_offset(), topo.threads & 0xffff, 0 | kLevelSmt, 0});
  t.set(0xb, 1, {topo.pkg_offset(), b.logical_per_die() & 0xffff, 1 | kLevelCore, 0});
  t.set(0xb, 2, {0, 0, 2, 0});
}

void leaf_1f(const Build& b, CpuidTable& t) {
  const Topology& topo = b.topo;
  if (topo.dies < 2) return;
  t.set(0x1f, 0, {topo.core_offset(), topo.threads & 0xffff, 0 | kLevelSmt, 0});
  t.set(0x1f, 1, {topo.die_offset(), b.logical_per_die() & 0xffff, 1 | kLevelCore, 0});
  t.set(0x1f, 2, {topo.pkg_offset(), (topo.dies * b.logical_per_die()) & 0xffff, 2 | kLevelDie, 0});
  t.set(0x1f, 3, {0, 0, 3, 0});
}

// QEMU's xsave_area_size: the legacy area plus each component, at its offset or packed.
uint32_t xsave_size(const Build& b, uint64_t mask, bool compacted) {
  uint32_t size = kXsaveLegacySize;
  for (unsigned i = 2; i < 64; ++i) {
    if (!(mask >> i & 1)) continue;
    uint32_t offset = compacted ? size : b.comps[i].offset;
    size = std::max(size, offset + b.comps[i].size);
  }
  return size;
}

void leaf_d(const Build& b, CpuidTable& t) {
  if (!b.has("xsave")) return;
  uint32_t full = xsave_size(b, b.xcr0, false);
  t.set(0xd, 0, {static_cast<uint32_t>(b.xcr0), full, full, static_cast<uint32_t>(b.xcr0 >> 32)});
  bool lbr = b.cpu.pmu && b.has("arch-lbr") && b.has("xsaves");
  CpuidRegs s1 = b.word_regs(0xd, 1);
  s1.ebx = xsave_size(b, b.xcr0 | b.xss_words, true);
  s1.ecx = lbr ? 1u << 15 : 0;
  s1.edx = 0;
  if (s1.eax) t.set(0xd, 1, s1);
  for (unsigned i = 2; i < 64; ++i) {
    const XsaveComponent& c = b.comps[i];
    if (i == 15 && lbr && b.host) {
      put_nonzero(t, 0xd, i, b.host->guest_cpuid().get(0xd, i));
    } else if (b.xcr0 >> i & 1) {
      if (c.size) t.set(0xd, i, {c.size, c.offset, c.ecx & 0x6, 0});
    } else if (b.xss_words >> i & 1) {
      if (c.size) t.set(0xd, i, {c.size, 0, 1, 0});
    }
  }
}

void leaf_12(const Build&, CpuidTable& t) {
  // SGX enumeration needs the host's EPC; QEMU fills it under KVM only. Not provided: zeros.
  for (uint32_t s = 0; s < 3; ++s) t.set(0x12, s, {});
}

void leaf_14(const Build& b, CpuidTable& t) {
  if (!b.has("intel-pt")) return t.set(0x14, 0, {});
  CpuidRegs w = b.word_regs(0x14, 0);
  t.set(0x14, 0, {1, 0xf | w.ebx, 0x7 | w.ecx, 0});
  t.set(0x14, 1, {0x02490002, 0x003f1fff, 0, 0});  // MTC/ADDR ranges, PSB/cycle bitmaps (QEMU's minimum)
}

void leaf_1c(const Build& b, CpuidTable& t) {
  if (!(b.cpu.pmu && b.has("arch-lbr") && b.host)) return;
  CpuidRegs r = b.host->guest_cpuid().get(0x1c);
  r.edx = 0;
  put_nonzero(t, 0x1c, 0, r);
}

void leaf_1d(const Build& b, CpuidTable& t) {
  if (!b.has("amx-tile")) return t.set(0x1d, 0, {});
  t.set(0x1d, 0, {1, 0, 0, 0});  // Sapphire Rapids' palette, as QEMU hard-codes it
  t.set(0x1d, 1, {0x2000 | 0x400u << 16, 0x40 | 8u << 16, 0x10, 0});
}

void leaf_1e(const Build& b, CpuidTable& t) {
  if (!b.has("amx-tile")) return t.set(0x1e, 0, {});
  CpuidRegs s1 = b.word_regs(0x1e, 1);
  t.set(0x1e, 0, {s1.zero() ? 0u : 1u, 0x10 | 0x40u << 8, 0, 0});
  if (!s1.zero()) t.set(0x1e, 1, s1);
}

using Emit = void (*)(const Build&, CpuidTable&);
struct LeafRule {
  uint32_t leaf;
  Emit emit;
};

constexpr LeafRule kBasicRules[] = {
    {0x0, leaf_0},   {0x1, leaf_1},   {0x2, leaf_2},   {0x4, leaf_4},   {0x5, leaf_5},
    {0x7, leaf_7},   {0xa, leaf_a},   {0xb, leaf_b},   {0xd, leaf_d},   {0x12, leaf_12},
    {0x14, leaf_14}, {0x1c, leaf_1c}, {0x1d, leaf_1d}, {0x1e, leaf_1e}, {0x1f, leaf_1f},
};

}  // namespace

void emit_extended(const Build& b, CpuidTable& t);  // guest_cpuid_extended.cc

CpuidTable build_template(const Build& b) {
  CpuidTable t;
  // Plain leaves with feature words and no rule of their own (6, 0x24, ...): the words.
  std::set<uint32_t> done;
  for (const auto& r : kBasicRules)
    if (r.leaf <= b.level) r.emit(b, t), done.insert(r.leaf);
  for (const auto& [key, regs] : b.words.entries())
    if (key.leaf <= b.level && !done.count(key.leaf)) put_nonzero(t, key.leaf, key.subleaf, regs);
  // KVM's paravirt leaves (kvm_arch_init_vcpu, not cpu_x86_cpuid): signature and features.
  CpuidRegs sig{0x40000001, 0, 0, 0};
  std::memcpy(&sig.ebx, "KVMKVMKVM\0\0\0", 12);
  t.set(0x40000000, 0, sig);
  CpuidRegs kvm = b.word_regs(0x40000001, 0);
  t.set(0x40000001, 0, {kvm.eax, 0, 0, kvm.edx});
  emit_extended(b, t);
  return t;
}

void apply_vcpu(const Build& b, const VcpuPlace& p, CpuidTable& t) {
  if (b.level >= 1) t.reg(1, 0, Reg::kEbx) |= p.apic_id << 24;
  for (uint32_t leaf : {0xbu, 0x1fu})
    if (leaf <= b.level)
      for (uint32_t s : t.subleaves(leaf)) t.reg(leaf, s, Reg::kEdx) = p.apic_id;
  if (b.xlevel >= 0x8000001e && p.core <= 255) {
    // AMD's extended APIC ID, core and node IDs (QEMU's encode_topo_cpuid8000001e).
    CpuidRegs r{p.apic_id, (b.topo.threads - 1) << 8 | (p.core & 0xff),
                (b.topo.dies - 1) << 8 | ((p.apic_id >> b.topo.die_offset()) & 0xff), 0};
    put_nonzero(t, 0x8000001e, 0, r);
  }
}

}  // namespace cpumodel::guest
