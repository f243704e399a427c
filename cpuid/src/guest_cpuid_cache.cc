// Cache leaves (2, 4, 0x80000005/6, 0x8000001D) and XSAVE components of the guest CPUID builder.
// Values are QEMU 7.2's (target/i386/cpu.c: legacy_*_cache, cpuid2_cache_descriptors,
// encode_cache_cpuid*, x86_ext_save_areas), re-expressed as data.
#include <array>

#include "guest_cpuid_internal.h"

namespace cpumodel::guest {
namespace {

constexpr unsigned kData = 1, kInstruction = 2, kUnified = 3;

// CPUID leaf 2 descriptors (Intel SDM vol. 2A, table "Encoding of CPUID Leaf 2 Descriptors"), the
// subset QEMU can match: {descriptor, level, type, size KiB, ways, line}.
struct Descriptor {
  uint8_t code, level, type;
  uint16_t size_kib;
  uint8_t ways, line;
};
constexpr Descriptor kDescriptors[] = {
    {0x06, 1, kInstruction, 8, 4, 32},   {0x08, 1, kInstruction, 16, 4, 32},
    {0x09, 1, kInstruction, 32, 4, 64},  {0x0A, 1, kData, 8, 2, 32},
    {0x0C, 1, kData, 16, 4, 32},         {0x0D, 1, kData, 16, 4, 64},
    {0x0E, 1, kData, 24, 6, 64},         {0x1D, 2, kUnified, 128, 2, 64},
    {0x21, 2, kUnified, 256, 8, 64},     {0x24, 2, kUnified, 1024, 16, 64},
    {0x2C, 1, kData, 32, 8, 64},         {0x30, 1, kInstruction, 32, 8, 64},
    {0x41, 2, kUnified, 128, 4, 32},     {0x42, 2, kUnified, 256, 4, 32},
    {0x43, 2, kUnified, 512, 4, 32},     {0x44, 2, kUnified, 1024, 4, 32},
    {0x45, 2, kUnified, 2048, 4, 32},    {0x46, 3, kUnified, 4096, 4, 64},
    {0x47, 3, kUnified, 8192, 8, 64},    {0x48, 2, kUnified, 3072, 12, 64},
    {0x4A, 3, kUnified, 6144, 12, 64},   {0x4B, 3, kUnified, 8192, 16, 64},
    {0x4C, 3, kUnified, 12288, 12, 64},  {0x4D, 3, kUnified, 16384, 16, 64},
    {0x4E, 2, kUnified, 6144, 24, 64},   {0x60, 1, kData, 16, 8, 64},
    {0x66, 1, kData, 8, 4, 64},          {0x67, 1, kData, 16, 4, 64},
    {0x68, 1, kData, 32, 4, 64},         {0x78, 2, kUnified, 1024, 4, 64},
    {0x7D, 2, kUnified, 2048, 8, 64},    {0x7F, 2, kUnified, 512, 2, 64},
    {0x80, 2, kUnified, 512, 8, 64},     {0x82, 2, kUnified, 256, 8, 32},
    {0x83, 2, kUnified, 512, 8, 32},     {0x84, 2, kUnified, 1024, 8, 32},
    {0x85, 2, kUnified, 2048, 8, 32},    {0x86, 2, kUnified, 512, 4, 64},
    {0x87, 2, kUnified, 1024, 8, 64},    {0xD0, 3, kUnified, 512, 4, 64},
    {0xD1, 3, kUnified, 1024, 4, 64},    {0xD2, 3, kUnified, 2048, 4, 64},
    {0xD6, 3, kUnified, 1024, 8, 64},    {0xD7, 3, kUnified, 2048, 8, 64},
    {0xD8, 3, kUnified, 4096, 8, 64},    {0xDC, 3, kUnified, 1536, 12, 64},
    {0xDD, 3, kUnified, 3072, 12, 64},   {0xDE, 3, kUnified, 6144, 12, 64},
    {0xE2, 3, kUnified, 2048, 16, 64},   {0xE3, 3, kUnified, 4096, 16, 64},
    {0xE4, 3, kUnified, 8192, 16, 64},   {0xEA, 3, kUnified, 12288, 24, 64},
    {0xEB, 3, kUnified, 18432, 24, 64},  {0xEC, 3, kUnified, 24576, 24, 64},
};

// QEMU's legacy caches: what guests see when the model has no cache info. {type, level, size,
// line, ways, partitions, sets, lines_per_tag, self_init, no_invd_sharing, inclusive, complex}.
constexpr Cache kLegacyL1d{kData, 1, 32u << 10, 64, 8, 1, 64, 0, true, true, false, false};
constexpr Cache kLegacyL1dAmd{kData, 1, 64u << 10, 64, 2, 1, 512, 1, true, true, false, false};
constexpr Cache kLegacyL1i{kInstruction, 1, 32u << 10, 64, 8, 1, 64, 0, true, true, false, false};
constexpr Cache kLegacyL1iAmd{kInstruction, 1, 64u << 10, 64, 2, 1, 512, 1, true, true, false, false};
constexpr Cache kLegacyL2{kUnified, 2, 4u << 20, 64, 16, 1, 4096, 0, true, true, false, false};
// Leaf 2's L2 (2 MiB, 8-way) disagrees with leaf 4's (4 MiB, 16-way): QEMU keeps both.
constexpr Cache kLegacyL2Cpuid2{kUnified, 2, 2u << 20, 64, 8, 0, 0, 0, false, false, false, false};
constexpr Cache kLegacyL2Amd{kUnified, 2, 512u << 10, 64, 16, 1, 512, 1, false, false, false, false};
constexpr Cache kLegacyL3{kUnified, 3, 16u << 20, 64, 16, 1, 16384, 1, true, false, true, true};

Cache from_level(const CacheLevel& l) {
  Cache c;
  c.type = l.type == CacheLevel::Type::kData ? kData
           : l.type == CacheLevel::Type::kInstruction ? kInstruction : kUnified;
  c.level = l.level;
  c.size = l.size_kib * 1024u;
  c.line_size = l.line_size;
  c.associativity = l.associativity ? l.associativity : 0xFF;
  c.partitions = l.partitions ? l.partitions : 1;
  unsigned way_bytes = c.line_size * c.associativity * c.partitions;
  c.sets = l.sets ? l.sets : (way_bytes ? c.size / way_bytes : 0);
  c.lines_per_tag = l.lines_per_tag;
  c.self_init = l.self_init;
  c.no_invd_sharing = l.no_invd_sharing;
  c.inclusive = l.inclusive;
  c.complex_indexing = l.complex_indexing;
  return c;
}

const CacheLevel* find_level(const CacheInfo& info, unsigned level, CacheLevel::Type type) {
  for (const auto& l : info.levels)
    if (l.level == level && (l.type == type || (level > 1 && type == CacheLevel::Type::kUnified)))
      return &l;
  return nullptr;
}

unsigned minus_one(unsigned v) { return v ? v - 1 : 0; }

uint32_t amd_assoc(unsigned a) {
  switch (a) {
    case 0: case 1: return a;
    case 2: return 0x2;
    case 4: return 0x4;
    case 8: return 0x6;
    case 16: return 0x8;
    case 32: return 0xA;
    case 48: return 0xB;
    case 64: return 0xC;
    case 96: return 0xD;
    case 128: return 0xE;
    case 0xFF: return 0xF;
    default: return 0;
  }
}

// EBX/ECX/EDX of leaves 4 and 0x8000001D.
void encode_geometry(const Cache& c, CpuidRegs& r) {
  r.ebx = minus_one(c.line_size) | (minus_one(c.partitions) << 12) | (minus_one(c.associativity) << 22);
  r.ecx = minus_one(c.sets);
  r.edx = (c.no_invd_sharing ? 1u : 0u) | (c.inclusive ? 2u : 0u) | (c.complex_indexing ? 4u : 0u);
}

uint32_t encode_kind(const Cache& c) { return c.type | (c.level << 5) | (c.self_init ? 1u << 8 : 0u); }

}  // namespace

CacheViews cache_views(const CpuDefinition& cpu) {
  if (!cpu.cache || cpu.cache->levels.empty()) {  // no (or only a named) cache info: legacy
    CacheViews v;
    v.cpuid2 = {kLegacyL1d, kLegacyL1i, kLegacyL2Cpuid2, kLegacyL3};
    v.cpuid4 = {kLegacyL1d, kLegacyL1i, kLegacyL2, kLegacyL3};
    v.amd = {kLegacyL1dAmd, kLegacyL1iAmd, kLegacyL2Amd, kLegacyL3};
    return v;
  }
  using T = CacheLevel::Type;
  CacheSet s{kLegacyL1d, kLegacyL1i, kLegacyL2, std::nullopt};
  if (auto* l = find_level(*cpu.cache, 1, T::kData)) s.l1d = from_level(*l);
  if (auto* l = find_level(*cpu.cache, 1, T::kInstruction)) s.l1i = from_level(*l);
  if (auto* l = find_level(*cpu.cache, 2, T::kUnified)) s.l2 = from_level(*l);
  if (auto* l = find_level(*cpu.cache, 3, T::kUnified)) s.l3 = from_level(*l);
  return CacheViews{s, s, s};
}

uint8_t cpuid2_descriptor(const Cache& c) {
  for (const auto& d : kDescriptors)
    if (d.level == c.level && d.type == c.type && d.size_kib * 1024u == c.size && d.line == c.line_size &&
        d.ways == c.associativity)
      return d.code;
  return 0xFF;  // "no descriptor; use leaf 4"
}

CpuidRegs encode_cpuid4(const Cache& c, unsigned num_apic_ids, unsigned num_cores) {
  CpuidRegs r;
  r.eax = encode_kind(c) | (minus_one(num_cores) << 26) | (minus_one(num_apic_ids) << 14);
  encode_geometry(c, r);
  return r;
}

CpuidRegs encode_cpuid8000001d(const Cache& c, const Topology& topo) {
  CpuidRegs r;
  // L3 is shared by the cores of a die (QEMU: cores_per_die * threads_per_core), the rest by the
  // threads of a core.
  unsigned sharing = c.level == 3 ? topo.cores * topo.threads : topo.threads;
  r.eax = encode_kind(c) | (minus_one(sharing) << 14);
  encode_geometry(c, r);
  return r;
}

uint32_t encode_cpuid80000005(const Cache& c) {
  return ((c.size / 1024) << 24) | (c.associativity << 16) | (c.lines_per_tag << 8) | c.line_size;
}

void encode_cpuid80000006(const Cache& l2, const Cache* l3, uint32_t& ecx, uint32_t& edx) {
  ecx = ((l2.size / 1024) << 16) | (amd_assoc(l2.associativity) << 12) | (l2.lines_per_tag << 8) | l2.line_size;
  edx = l3 ? ((l3->size / (512 * 1024)) << 18) | (amd_assoc(l3->associativity) << 12) | (l3->lines_per_tag << 8) |
                 l3->line_size
           : 0;
}

const std::vector<XsaveComponent>& xsave_components() {
  // Architectural (non-compacted) offsets and sizes, Intel SDM vol. 1 ch. 13 and QEMU's
  // x86_ext_save_areas; AMX's ECX (64-byte alignment, XFD) as Sapphire Rapids reports it.
  static const std::vector<XsaveComponent> kComponents = {
      {0, "fpu", 160, 0, 0, false},       {1, "sse", 256, 160, 0, false},
      {2, "avx", 256, 576, 0, false},     {3, "mpx", 64, 960, 0, false},
      {4, "mpx", 64, 1024, 0, false},     {5, "avx512f", 64, 1088, 0, false},
      {6, "avx512f", 512, 1152, 0, false}, {7, "avx512f", 1024, 1664, 0, false},
      {9, "pku", 8, 2688, 0, false},      {15, "arch-lbr", 808, 0, 0, true},
      {17, "amx-tile", 64, 2752, 2, false}, {18, "amx-tile", 8192, 2816, 6, false},
  };
  return kComponents;
}

}  // namespace cpumodel::guest
