// The probe guest (vmm/src/probe_guest.S): runs CPUID in the guest on every vCPU and brings back
// what each vCPU saw. Layout, loader and result reader work on a GuestMemory (no KVM needed);
// run_probe() does the whole run on a Machine.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "cpumodel/cpuid/result.h"
#include "cpumodel/cpuid/table.h"
#include "cpumodel/vmm/cpuset.h"
#include "cpumodel/vmm/guest_memory.h"
#include "cpumodel/vmm/machine.h"
#include "cpumodel/vmm/x86_boot.h"

namespace cpumodel::vmm {

// One CPUID result as the guest stores it (guest_abi.h).
struct ProbeRecord {
  uint32_t leaf, subleaf, eax, ebx, ecx, edx;
  CpuidRegs regs() const { return CpuidRegs{eax, ebx, ecx, edx}; }
};
static_assert(sizeof(ProbeRecord) == 24);

// The probe's machine code (assembled at build time) for a CPU mode.
std::span<const uint8_t> probe_code(CpuMode mode);
// 64-bit long mode when the table has lm (CPUID.80000001H:EDX[bit 29]), else 32-bit protected mode.
CpuMode probe_mode(const CpuidTable& table);

// What the probe runs: every (leaf, subleaf) of the tables plus every leaf up to each range's max
// in the tables (once, sorted), and where the guest's own range walks start (past the tables'
// max), so no leaf is run twice. Range bases: 0, 0x40000000, 0x80000000, 0xC0000000.
struct ProbePlan {
  std::vector<CpuidKey> queries;
  std::array<uint32_t, 4> range_start{};
};
ProbePlan probe_plan(std::span<const CpuidTable> tables);

// Where the header and each vCPU's records go (the queries are the first records, their keys
// written by load_probe), and how much RAM that needs. The header sits right after the code (one
// page for both: on kvm_pvm every page a guest touches after an exit costs a few microseconds),
// the records from BootLayout::kData.
struct ProbeLayout {
  uint64_t queries = 0;        // guest-physical address of the header (count, start[4]; guest_abi.h)
  uint64_t results = 0;        // vCPU i's records at results + i * stride
  uint64_t stride = 0;
  uint64_t capacity = 0;       // records per vCPU
  uint64_t ram_size = 0;       // rounded up to 2 MiB
  unsigned vcpus = 0;
  uint64_t results_of(unsigned vcpu) const { return results + vcpu * stride; }
};
ProbeLayout probe_layout(const ProbePlan& plan, unsigned vcpu_count);

// How vCPU `vcpu` enters the probe for `queries` queries (guest_abi.h): RIP at the copy of the
// unrolled query code that starts the first pass, ESI moved back to match it, EBP = whole blocks
// after the first pass.
struct ProbeEntry {
  uint64_t rip = 0, rsi = 0, rbp = 0;
};
ProbeEntry probe_entry(CpuMode mode, const ProbeLayout& layout, size_t queries, unsigned vcpu);

// Writes the code, the header, and each query's leaf and subleaf into every vCPU's first records.
Status load_probe(const GuestMemory& mem, CpuMode mode, const ProbeLayout& layout, const ProbePlan& plan);
// The records vCPU `vcpu` wrote; `end` is the address it wrote to the done port.
Result<std::vector<ProbeRecord>> read_probe_records(const GuestMemory& mem, const ProbeLayout& layout,
                                                    unsigned vcpu, uint32_t end);

struct ProbeOptions {
  std::string device = default_kvm_device();
  double timeout_s = 10;
  PinMap pins;                                   // checked by the caller (check_pin_map)
  std::function<void(unsigned, pid_t)> on_vcpu_exit;
  std::shared_ptr<PreparedVm> prepared;          // made ahead with probe_ram_size (machine.h)
  Teardown* teardown = nullptr;                  // destroys the VM once read, if given (machine.h)
};

// The RAM the probe VM gets for `vcpus` vCPUs and up to 256 queries each (the catalog's models
// have 20 to 70), to prepare the VM before the tables exist.
uint64_t probe_ram_size(unsigned vcpus);

struct ProbeRun {
  MachineReport machine;                          // backend, threads, ends, timings
  std::vector<std::vector<ProbeRecord>> records;  // per vCPU, in the order the guest ran them
  double total_ms = 0;                            // VM creation to teardown (to handing it to `teardown`)
};

// Runs the probe on one vCPU per table (KVM vCPU id = apic_ids[i]). A vCPU that does not finish
// is an error (exit 3) whose message carries the failure and its register dump.
Result<ProbeRun> run_probe(std::span<const CpuidTable> tables, std::span<const uint32_t> apic_ids,
                           const ProbeOptions& options);

}  // namespace cpumodel::vmm
