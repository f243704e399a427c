// vCPU placement and APIC IDs with QEMU's layout (QEMU 7.2 include/hw/i386/topology.h: the
// contiguous vCPU index is split into package/die/core/thread, and each field of the APIC ID is
// ceil(log2(count)) bits wide).
#include "guest_cpuid_internal.h"

namespace cpumodel {
namespace guest {

unsigned bits_for_count(unsigned count) {
  if (count <= 1) return 0;
  return 32u - static_cast<unsigned>(__builtin_clz(count - 1));
}

Topology::Topology(const SmpConfig& smp)
    : dies(smp.dies ? smp.dies : 1),
      cores(smp.cores ? smp.cores : 1),
      threads(smp.threads ? smp.threads : 1),
      smt_width(bits_for_count(threads)),
      core_width(bits_for_count(cores)),
      die_width(bits_for_count(dies)) {}

uint32_t Topology::apic_id(unsigned socket, unsigned die, unsigned core, unsigned thread) const {
  // 64-bit so absurd shapes (fields wider than 32 bits in all) truncate instead of shifting past
  // the type; APIC IDs are 32 bits.
  uint64_t id = (uint64_t{socket} << pkg_offset()) | (uint64_t{die} << die_offset()) |
                (uint64_t{core} << core_offset()) | thread;
  return static_cast<uint32_t>(id);
}

VcpuPlace Topology::place(unsigned index) const {
  VcpuPlace p;
  p.index = index;
  p.socket = index / (dies * cores * threads);
  p.die = index / (cores * threads) % dies;
  p.core = index / threads % cores;
  p.thread = index % threads;
  p.apic_id = apic_id(p.socket, p.die, p.core, p.thread);
  return p;
}

}  // namespace guest

std::vector<VcpuPlace> vcpu_places(const SmpConfig& smp) {
  guest::Topology topo(smp);
  std::vector<VcpuPlace> out;
  out.reserve(smp.maxcpus);
  for (unsigned i = 0; i < smp.maxcpus; ++i) out.push_back(topo.place(i));
  return out;
}

uint32_t apic_id_of(const SmpConfig& smp, unsigned index) { return guest::Topology(smp).place(index).apic_id; }

}  // namespace cpumodel
