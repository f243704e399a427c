// Guest memory, GDT/page-table setup and the probe loader, on a plain buffer (no /dev/kvm).
#include <gtest/gtest.h>

#include <vector>

#include "cpumodel/vmm/guest_abi.h"
#include "cpumodel/vmm/guest_memory.h"
#include "cpumodel/vmm/probe.h"
#include "cpumodel/vmm/x86_boot.h"

namespace cpumodel::vmm {
namespace {

struct Buffer {
  explicit Buffer(size_t size, uint64_t base = 0) : bytes(size, 0xcc), mem(bytes, base) {}
  std::vector<uint8_t> bytes;
  GuestMemory mem;
};

TEST(GuestMemory, BoundsAreChecked) {
  Buffer b(0x1000, 0x10000);
  EXPECT_TRUE(b.mem.contains(0x10000, 0x1000));
  EXPECT_FALSE(b.mem.contains(0x10000, 0x1001));
  EXPECT_FALSE(b.mem.contains(0xffff, 1));
  EXPECT_FALSE(b.mem.contains(0x10ff0, UINT64_MAX));  // no wrap-around
  EXPECT_TRUE(b.mem.write_obj<uint32_t>(0x10ffc, 0x11223344).ok());
  EXPECT_EQ(b.bytes[0xffc], 0x44);
  auto bad = b.mem.write_obj<uint64_t>(0x10ffc, 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("0x10ffc"), std::string::npos) << bad.error().message;
  auto v = b.mem.read_obj<uint32_t>(0x10ffc);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 0x11223344u);
}

TEST(GuestRam, IsZeroedAndReleased) {
  auto ram = GuestRam::allocate(0, 2 << 20);
  ASSERT_TRUE(ram.ok()) << ram.error().message;
  auto v = ram->memory().read_obj<uint64_t>((2 << 20) - 8);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 0u);
}

// The descriptors Linux's boot code builds with GDT_ENTRY_INIT(flags, 0, 0xfffff)
// (arch/x86/boot/pm.c, arch/x86/kernel/head64.c): the encoding is fixed by the Intel SDM vol. 3 3.4.5.
TEST(Gdt, EntriesMatchTheSdmEncoding) {
  EXPECT_EQ(gdt_entry(0xa09b, 0, 0xfffff), 0x00af9b000000ffffull);  // 64-bit code
  EXPECT_EQ(gdt_entry(0xc093, 0, 0xfffff), 0x00cf93000000ffffull);  // 32-bit data
  EXPECT_EQ(gdt_entry(0xc09b, 0, 0xfffff), 0x00cf9b000000ffffull);  // 32-bit code
  EXPECT_EQ(gdt_entry(0x0089, 0x12345678, 0x67), 0x1200893456780067ull);  // a TSS with a base
}

TEST(Gdt, SegmentFromEntryScalesTheLimit) {
  kvm_segment cs = segment_from_gdt(0x00af9b000000ffffull, 0x08);
  EXPECT_EQ(cs.base, 0u);
  EXPECT_EQ(cs.limit, 0xffffffffu);
  EXPECT_EQ(cs.l, 1);
  EXPECT_EQ(cs.db, 0);
  EXPECT_EQ(cs.type, 0xb);
  EXPECT_EQ(cs.present, 1);
  EXPECT_EQ(cs.s, 1);
  EXPECT_EQ(cs.selector, 0x08);
  kvm_segment tss = segment_from_gdt(0x1200893456780067ull, 0x20);
  EXPECT_EQ(tss.base, 0x12345678u);
  EXPECT_EQ(tss.limit, 0x67u);  // byte granular
  EXPECT_EQ(tss.s, 0);
}

TEST(PageTables, IdentityMapTheFirstGiB) {
  Buffer b(BootLayout::kData);
  ASSERT_TRUE(write_boot_tables(b.mem, CpuMode::kLong64).ok());
  for (uint64_t va : {0ull, 0x8000ull, 0x1fffffull, 0x200000ull, 0x12345678ull, (1ull << 30) - 1}) {
    auto pa = translate(b.mem, BootLayout::kPml4, va);
    ASSERT_TRUE(pa.ok()) << hex(va) << ": " << pa.error().message;
    EXPECT_EQ(*pa, va);
  }
  auto beyond = translate(b.mem, BootLayout::kPml4, 1ull << 30);
  ASSERT_FALSE(beyond.ok());
  EXPECT_NE(beyond.error().message.find("PDPTE"), std::string::npos) << beyond.error().message;
  EXPECT_FALSE(translate(b.mem, BootLayout::kPml4, 1ull << 39).ok());
}

TEST(PageTables, ProtectedModeWritesOnlyTheGdt) {
  Buffer b(BootLayout::kData);
  ASSERT_TRUE(write_boot_tables(b.mem, CpuMode::kProtected32).ok());
  EXPECT_EQ(*b.mem.read_obj<uint64_t>(BootLayout::kGdt + 8), 0x00af9b000000ffffull);
  EXPECT_EQ(b.bytes[BootLayout::kPml4], 0xcc);  // untouched
}

TEST(PageTables, TooSmallMemoryIsAnError) {
  Buffer b(0x3000);
  EXPECT_FALSE(write_boot_tables(b.mem, CpuMode::kLong64).ok());
}

TEST(BootSregs, LongModeAndProtectedMode) {
  kvm_sregs s{};
  s.apic_base = 0xfee00900;
  apply_boot_sregs(CpuMode::kLong64, s);
  EXPECT_EQ(s.cr0 & 0x80000001u, 0x80000001u);  // PG, PE
  EXPECT_EQ(s.cr4 & 0x20u, 0x20u);              // PAE
  EXPECT_EQ(s.cr4 & (1u << 18), 0u);            // not OSXSAVE: the probe sees CR4-dependent bits clear
  EXPECT_EQ(s.efer & 0x500u, 0x500u);           // LME, LMA
  EXPECT_EQ(s.cr3, BootLayout::kPml4);
  EXPECT_EQ(s.cs.l, 1);
  EXPECT_EQ(s.apic_base, 0xfee00900u);          // untouched
  apply_boot_sregs(CpuMode::kProtected32, s);
  EXPECT_EQ(s.cr0 & 0x80000001u, 1u);
  EXPECT_EQ(s.efer, 0u);
  EXPECT_EQ(s.cs.l, 0);
  EXPECT_EQ(s.cs.db, 1);
}

TEST(Probe, CodeIsAssembledForBothModes) {
  auto c64 = probe_code(CpuMode::kLong64);
  auto c32 = probe_code(CpuMode::kProtected32);
  ASSERT_GT(c64.size(), 16u);
  ASSERT_GT(c32.size(), 16u);
  EXPECT_LE(c64.size(), BootLayout::kCodeMax);
  // The 64-bit copy addresses memory through 32-bit registers (0x67 prefix); the 32-bit copy does not.
  EXPECT_EQ(c64[0], 0x67);
  EXPECT_NE(c32[0], 0x67);
}

// The query code is CPUMODEL_PROBE_UNROLL copies of one length; a vCPU starts at the copy that
// leaves the first pass's queries, with ESI moved back by the copies skipped (guest_abi.h).
TEST(Probe, EntryStartsTheUnrolledBlockWhereTheFirstPassIsLeft) {
  constexpr size_t kUnroll = CPUMODEL_PROBE_UNROLL;
  ProbePlan plan;
  plan.queries.resize(10);
  ProbeLayout l = probe_layout(plan, 2);
  for (CpuMode mode : {CpuMode::kLong64, CpuMode::kProtected32}) {
    auto code = probe_code(mode);
    ProbeEntry none = probe_entry(mode, l, 0, 1);
    ProbeEntry one = probe_entry(mode, l, 1, 1);
    ProbeEntry full = probe_entry(mode, l, kUnroll, 1);
    // One copy's length, and the block's start and end in guest memory.
    uint64_t copy = none.rip - one.rip;
    ASSERT_GT(copy, 8u);
    uint64_t block = none.rip - kUnroll * copy;
    EXPECT_GE(block, BootLayout::kCode);
    EXPECT_LT(none.rip, BootLayout::kCode + code.size());
    EXPECT_EQ(full.rip, block);
    EXPECT_EQ(full.rsi, l.results_of(1));
    EXPECT_EQ(none.rsi, l.results_of(1) - kUnroll * sizeof(ProbeRecord));
    for (size_t n : {size_t{1}, size_t{7}, kUnroll - 1, kUnroll, kUnroll + 1, 2 * kUnroll, 2 * kUnroll + 5, size_t{5000}}) {
      ProbeEntry e = probe_entry(mode, l, n, 0);
      size_t first = n - e.rbp * kUnroll;
      EXPECT_GE(first, 1u) << n;
      EXPECT_LE(first, kUnroll) << n;
      EXPECT_EQ(e.rip, block + (kUnroll - first) * copy) << n;
      EXPECT_EQ(e.rsi + (kUnroll - first) * sizeof(ProbeRecord), l.results_of(0)) << n;
    }
    EXPECT_EQ(none.rbp, 0u);
    // Each copy is where the arithmetic says: its first load reads record k at ESI + 24 * k
    // (67 8b 86 disp32 in 64-bit mode, 8b 86 disp32 in 32-bit), so every copy has one length.
    for (size_t k : {size_t{0}, size_t{1}, size_t{63}, kUnroll - 1}) {
      size_t at = block - BootLayout::kCode + k * copy;
      size_t prefix = mode == CpuMode::kLong64 ? 1 : 0;
      ASSERT_LT(at + prefix + 6, code.size());
      if (prefix) {
        EXPECT_EQ(code[at], 0x67) << k;
      }
      EXPECT_EQ(code[at + prefix], 0x8b) << k;
      EXPECT_EQ(code[at + prefix + 1], 0x86) << k;
      uint32_t disp = 0;
      for (int b = 0; b < 4; ++b) disp |= uint32_t{code[at + prefix + 2 + b]} << (8 * b);
      EXPECT_EQ(disp, k * sizeof(ProbeRecord)) << k;
    }
  }
}

TEST(Probe, ModeFollowsLm) {
  CpuidTable t;
  EXPECT_EQ(probe_mode(t), CpuMode::kProtected32);
  t.set_bit(0x80000001, 0, Reg::kEdx, 29, true);
  EXPECT_EQ(probe_mode(t), CpuMode::kLong64);
}

TEST(Probe, PlanCoversTheTablesAndEveryLeafUpToTheirMax) {
  CpuidTable a, b;
  a.set(0, 0, {0x7, 1, 2, 3});
  a.set(7, 0, {});
  a.set(0x80000000, 0, {0x80000001, 0, 0, 0});
  b.set(0, 0, {0x4, 0, 0, 0});
  b.set(4, 1, {});
  b.set(7, 1, {});
  ProbePlan plan = probe_plan(std::vector<CpuidTable>{a, b});
  std::vector<CpuidKey> want = {{0, 0}, {1, 0}, {2, 0}, {3, 0}, {4, 0}, {4, 1}, {5, 0}, {6, 0},
                                {7, 0}, {7, 1}, {0x80000000, 0}, {0x80000001, 0}};
  EXPECT_EQ(plan.queries, want);
  // The guest walks on from past the tables' max; ranges the tables lack start at their base.
  EXPECT_EQ(plan.range_start[0], 0x8u);
  EXPECT_EQ(plan.range_start[1], 0x40000000u);
  EXPECT_EQ(plan.range_start[2], 0x80000002u);
  EXPECT_EQ(plan.range_start[3], 0xc0000000u);
  // An implausible max (beyond base + 255) counts as the base alone.
  CpuidTable c;
  c.set(0x40000000, 0, {0xdeadbeef, 0, 0, 0});
  EXPECT_EQ(probe_plan(std::vector<CpuidTable>{c}).range_start[1], 0x40000001u);
}

TEST(Probe, LayoutLoaderAndReader) {
  ProbePlan plan;
  plan.queries = {{0, 0}, {7, 0}, {0xd, 1}};
  plan.range_start = {0xe, 0x40000000, 0x80000009, 0xc0000000};
  ProbeLayout l = probe_layout(plan, 3);
  EXPECT_EQ(l.capacity, 3u + CPUMODEL_PROBE_RANGES * CPUMODEL_PROBE_RANGE_MAX);
  EXPECT_GE(l.stride, l.capacity * sizeof(ProbeRecord));
  EXPECT_EQ(l.ram_size % (2u << 20), 0u);
  EXPECT_GE(l.ram_size, l.results_of(2) + l.stride);
  EXPECT_GE(l.queries, BootLayout::kCode + probe_code(CpuMode::kLong64).size());
  EXPECT_LT(l.queries, BootLayout::kCode + BootLayout::kCodeMax);  // a short list shares the code's pages
  std::vector<uint8_t> ram(l.ram_size);
  GuestMemory mem(ram);
  ASSERT_TRUE(load_probe(mem, CpuMode::kLong64, l, plan).ok());
  auto code = probe_code(CpuMode::kLong64);
  EXPECT_TRUE(std::equal(code.begin(), code.end(), ram.begin() + BootLayout::kCode));
  EXPECT_EQ(*mem.read_obj<uint32_t>(l.queries), 3u);
  EXPECT_EQ(*mem.read_obj<uint32_t>(l.queries + 8 + 2 * 4), 0x80000009u);  // start[2]
  // Every vCPU's first records carry the queries' keys; the guest fills in the registers.
  for (unsigned v = 0; v < 3; ++v) {
    auto third = mem.read_obj<ProbeRecord>(l.results_of(v) + 2 * sizeof(ProbeRecord));
    ASSERT_TRUE(third.ok());
    EXPECT_EQ(third->leaf, 0xdu) << "vCPU " << v;
    EXPECT_EQ(third->subleaf, 1u) << "vCPU " << v;
    EXPECT_EQ(third->regs(), (CpuidRegs{})) << "vCPU " << v;
  }

  // What a guest on vCPU 1 would have written: two records.
  ProbeRecord r1{7, 0, 1, 2, 3, 4}, r2{0xd, 1, 5, 6, 7, 8};
  ASSERT_TRUE(mem.write_obj(l.results_of(1), r1).ok());
  ASSERT_TRUE(mem.write_obj(l.results_of(1) + sizeof(ProbeRecord), r2).ok());
  auto recs = read_probe_records(mem, l, 1, static_cast<uint32_t>(l.results_of(1) + 2 * sizeof(ProbeRecord)));
  ASSERT_TRUE(recs.ok()) << recs.error().message;
  ASSERT_EQ(recs->size(), 2u);
  EXPECT_EQ((*recs)[1].regs(), (CpuidRegs{5, 6, 7, 8}));
  // An end that is not a record boundary, or beyond the area, is the guest misbehaving.
  EXPECT_FALSE(read_probe_records(mem, l, 1, static_cast<uint32_t>(l.results_of(1) + 5)).ok());
  EXPECT_FALSE(read_probe_records(mem, l, 1, static_cast<uint32_t>(l.results_of(2) + 24)).ok());
}

TEST(Probe, LongQueryListsFitTheirVcpusRecords) {
  ProbePlan plan;
  for (uint32_t i = 0; i < 5000; ++i) plan.queries.push_back({0xd, i});
  ProbeLayout l = probe_layout(plan, 2);
  EXPECT_GE(l.stride, (5000 + CPUMODEL_PROBE_RANGES * CPUMODEL_PROBE_RANGE_MAX) * sizeof(ProbeRecord));
  std::vector<uint8_t> ram(l.ram_size);
  GuestMemory mem(ram);
  ASSERT_TRUE(load_probe(mem, CpuMode::kLong64, l, plan).ok());
  EXPECT_EQ(mem.read_obj<ProbeRecord>(l.results_of(1) + 4999 * sizeof(ProbeRecord))->subleaf, 4999u);
}

}  // namespace
}  // namespace cpumodel::vmm
