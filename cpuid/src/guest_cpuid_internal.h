// Internals of the guest CPUID builder shared by guest_cpuid*.cc and topology.cc (not installed).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "cpumodel/cpuid/cpu_definition.h"
#include "cpumodel/cpuid/guest_cpuid.h"
#include "cpumodel/cpuid/smp.h"

namespace cpumodel::guest {

// QEMU's APIC ID layout (include/hw/i386/topology.h): thread | core | die | package, each
// field as wide as the bits needed to count it (ceil(log2(count))), so 3 cores take 2 bits and
// leave a gap.
struct Topology {
  unsigned dies = 1, cores = 1, threads = 1;  // per package / per die / per core
  unsigned smt_width = 0, core_width = 0, die_width = 0;

  explicit Topology(const SmpConfig& smp);
  unsigned core_offset() const { return smt_width; }
  unsigned die_offset() const { return smt_width + core_width; }
  unsigned pkg_offset() const { return smt_width + core_width + die_width; }
  VcpuPlace place(unsigned index) const;
  uint32_t apic_id(unsigned socket, unsigned die, unsigned core, unsigned thread) const;
};

unsigned bits_for_count(unsigned count);

// One cache as QEMU's CPUCacheInfo: sizes in bytes, associativity 0xFF = fully associative.
struct Cache {
  unsigned type = 3;  // CPUID leaf 4 encoding: 1 data, 2 instruction, 3 unified
  unsigned level = 1;
  uint32_t size = 0;
  unsigned line_size = 64, associativity = 0, partitions = 1, sets = 0, lines_per_tag = 0;
  bool self_init = false, no_invd_sharing = false, inclusive = false, complex_indexing = false;
};

// The four caches one view of the guest sees; l3 may be absent.
struct CacheSet {
  Cache l1d, l1i, l2;
  std::optional<Cache> l3;
};

// QEMU keeps three views: leaf 2 descriptors, leaf 4, and AMD's 0x80000005/6/1D leaves. With a
// model's cache info all three are that; without it, QEMU's legacy values (which disagree).
struct CacheViews {
  CacheSet cpuid2, cpuid4, amd;
};
CacheViews cache_views(const CpuDefinition& cpu);

// Leaf encoders (QEMU's encode_cache_cpuid*), as values.
uint8_t cpuid2_descriptor(const Cache& c);  // 0xFF when no descriptor matches
CpuidRegs encode_cpuid4(const Cache& c, unsigned num_apic_ids, unsigned num_cores);
CpuidRegs encode_cpuid8000001d(const Cache& c, const Topology& topo);
uint32_t encode_cpuid80000005(const Cache& c);
void encode_cpuid80000006(const Cache& l2, const Cache* l3, uint32_t& ecx, uint32_t& edx);

// XSAVE state components: which features enable them, their architectural size and offset.
struct XsaveComponent {
  unsigned index;
  const char* feature;  // canonical feature name that enables it
  uint32_t size, offset;
  uint32_t ecx;         // 0xD.i ECX: bit 1 64-byte aligned when compacted, bit 2 XFD
  bool supervisor;      // an XSS (not XCR0) component
};
const std::vector<XsaveComponent>& xsave_components();
constexpr uint32_t kXsaveLegacySize = 512 + 64;  // legacy region + XSAVE header

}  // namespace cpumodel::guest
