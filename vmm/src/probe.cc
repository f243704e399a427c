#include "cpumodel/vmm/probe.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <set>

#include "cpumodel/vmm/guest_abi.h"

extern "C" const uint8_t cpumodel_probe64_begin[], cpumodel_probe64_end[];
extern "C" const uint8_t cpumodel_probe32_begin[], cpumodel_probe32_end[];
extern "C" const uint8_t cpumodel_probe64_queries[], cpumodel_probe64_queries_end[];
extern "C" const uint8_t cpumodel_probe32_queries[], cpumodel_probe32_queries_end[];

namespace cpumodel::vmm {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kRamGranule = 2ull << 20;
constexpr uint64_t kRangeRecords = uint64_t{CPUMODEL_PROBE_RANGES} * CPUMODEL_PROBE_RANGE_MAX;

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

}  // namespace

std::span<const uint8_t> probe_code(CpuMode mode) {
  if (mode == CpuMode::kLong64)
    return {cpumodel_probe64_begin, static_cast<size_t>(cpumodel_probe64_end - cpumodel_probe64_begin)};
  return {cpumodel_probe32_begin, static_cast<size_t>(cpumodel_probe32_end - cpumodel_probe32_begin)};
}

ProbeEntry probe_entry(CpuMode mode, const ProbeLayout& layout, size_t queries, unsigned vcpu) {
  bool long64 = mode == CpuMode::kLong64;
  const uint8_t* begin = long64 ? cpumodel_probe64_begin : cpumodel_probe32_begin;
  const uint8_t* block = long64 ? cpumodel_probe64_queries : cpumodel_probe32_queries;
  const uint8_t* block_end = long64 ? cpumodel_probe64_queries_end : cpumodel_probe32_queries_end;
  constexpr size_t kUnroll = CPUMODEL_PROBE_UNROLL;
  size_t copy_size = static_cast<size_t>(block_end - block) / kUnroll;  // every copy the same (probe_guest.S)
  size_t more_blocks = queries == 0 ? 0 : (queries - 1) / kUnroll;
  size_t first_pass = queries - more_blocks * kUnroll;  // 1..kUnroll, or 0
  size_t skipped = kUnroll - first_pass;                // copies the first pass starts after
  ProbeEntry e;
  e.rip = BootLayout::kCode + static_cast<uint64_t>(block - begin) + skipped * copy_size;
  e.rsi = layout.results_of(vcpu) - skipped * sizeof(ProbeRecord);
  e.rbp = more_blocks;
  return e;
}

CpuMode probe_mode(const CpuidTable& table) {
  return table.bit(0x80000001, 0, Reg::kEdx, 29) ? CpuMode::kLong64 : CpuMode::kProtected32;
}

ProbePlan probe_plan(std::span<const CpuidTable> tables) {
  static constexpr uint32_t kBases[CPUMODEL_PROBE_RANGES] = {0, 0x40000000, 0x80000000, 0xc0000000};
  std::set<CpuidKey> keys;
  for (const auto& t : tables)
    for (const auto& [key, regs] : t.entries()) keys.insert(key);
  ProbePlan plan;
  for (size_t r = 0; r < std::size(kBases); ++r) {
    uint32_t base = kBases[r];
    std::optional<uint32_t> max;
    for (const auto& t : tables) {
      if (!t.has(base)) continue;
      uint32_t m = t.get(base).eax;
      if (m < base || m - base >= CPUMODEL_PROBE_RANGE_MAX) m = base;
      max = std::max(max.value_or(base), m);
    }
    plan.range_start[r] = max ? *max + 1 : base;
    for (uint32_t leaf = base; max && leaf <= *max; ++leaf) keys.insert(CpuidKey{leaf, 0});
  }
  plan.queries.assign(keys.begin(), keys.end());
  return plan;
}

ProbeLayout probe_layout(const ProbePlan& plan, unsigned vcpu_count) {
  size_t code = std::max(probe_code(CpuMode::kLong64).size(), probe_code(CpuMode::kProtected32).size());
  ProbeLayout l;
  l.queries = align_up(BootLayout::kCode + code, 64);
  if (l.queries + CPUMODEL_PROBE_HEADER > BootLayout::kCode + BootLayout::kCodeMax) l.queries = BootLayout::kData;
  l.results = BootLayout::kData + (l.queries == BootLayout::kData ? kPage : 0);
  l.capacity = plan.queries.size() + kRangeRecords;
  l.stride = align_up(l.capacity * sizeof(ProbeRecord), kPage);
  l.vcpus = vcpu_count;
  l.ram_size = align_up(l.results + l.stride * vcpu_count, kRamGranule);
  return l;
}

uint64_t probe_ram_size(unsigned vcpus) {
  ProbePlan typical;
  typical.queries.resize(256);
  return probe_layout(typical, vcpus).ram_size;
}

Status load_probe(const GuestMemory& mem, CpuMode mode, const ProbeLayout& layout, const ProbePlan& plan) {
  auto code = probe_code(mode);
  if (BootLayout::kCode + code.size() > layout.queries) return input_error("probe code overlaps its header");
  if (layout.vcpus == 0) return input_error("probe layout for no vCPU");
  if (auto st = mem.write(BootLayout::kCode, code); !st) return st;
  if (plan.queries.size() + kRangeRecords > layout.capacity)
    return input_error("probe layout holds " + std::to_string(layout.capacity) + " records, " +
                       std::to_string(plan.queries.size() + kRangeRecords) + " needed");
  std::vector<uint32_t> header;
  header.push_back(static_cast<uint32_t>(plan.queries.size()));
  header.push_back(0);
  header.insert(header.end(), plan.range_start.begin(), plan.range_start.end());
  if (auto st = mem.write(layout.queries, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(header.data()),
                                                                   header.size() * sizeof(uint32_t)));
      !st)
    return st;
  std::vector<ProbeRecord> records(plan.queries.size());
  for (size_t q = 0; q < records.size(); ++q) {
    records[q].leaf = plan.queries[q].leaf;
    records[q].subleaf = plan.queries[q].subleaf;
  }
  auto bytes = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(records.data()),
                                        records.size() * sizeof(ProbeRecord));
  for (unsigned v = 0; v < layout.vcpus; ++v)
    if (auto st = mem.write(layout.results_of(v), bytes); !st) return st;
  return ok_status();
}

Result<std::vector<ProbeRecord>> read_probe_records(const GuestMemory& mem, const ProbeLayout& layout,
                                                    unsigned vcpu, uint32_t end) {
  uint64_t base = layout.results_of(vcpu);
  uint64_t limit = base + layout.capacity * sizeof(ProbeRecord);
  if (end < base || end > limit || (end - base) % sizeof(ProbeRecord) != 0)
    return host_error("probe guest on vCPU " + std::to_string(vcpu) + " reported end " + hex(end) +
                      ", not a record boundary in [" + hex(base) + ", " + hex(limit) + "]");
  size_t count = (end - base) / sizeof(ProbeRecord);
  auto bytes = mem.slice(base, count * sizeof(ProbeRecord));
  if (!bytes) return bytes.error();
  std::vector<ProbeRecord> out(count);
  if (count) std::memcpy(out.data(), bytes->data(), count * sizeof(ProbeRecord));
  return out;
}

Result<ProbeRun> run_probe(std::span<const CpuidTable> tables, std::span<const uint32_t> apic_ids,
                           const ProbeOptions& options) {
  if (tables.empty() || tables.size() != apic_ids.size())
    return input_error("run_probe: one CPUID table and one APIC ID per vCPU");
  auto t0 = std::chrono::steady_clock::now();
  ProbePlan plan = probe_plan(tables);
  ProbeLayout layout = probe_layout(plan, static_cast<unsigned>(tables.size()));
  MachineConfig config;
  config.device = options.device;
  config.ram_size = layout.ram_size;
  config.mode = probe_mode(tables[0]);
  config.timeout_s = options.timeout_s;
  config.irqchip = false;  // the probe takes no interrupts; see MachineConfig::irqchip
  config.on_vcpu_exit = options.on_vcpu_exit;
  config.prepared = options.prepared;
  for (unsigned i = 0; i < tables.size(); ++i) {
    VcpuConfig vc;
    vc.apic_id = apic_ids[i];
    vc.cpuid = tables[i];
    if (auto it = options.pins.find(i); it != options.pins.end()) vc.pin = it->second;
    ProbeEntry entry = probe_entry(config.mode, layout, plan.queries.size(), i);
    vc.rip = entry.rip;
    vc.rdi = layout.queries;
    vc.rsp = layout.queries;  // the probe reads its range starts through ESP (guest_abi.h)
    vc.rsi = entry.rsi;
    vc.rbp = entry.rbp;
    config.vcpus.push_back(std::move(vc));
  }
  auto machine = Machine::create(std::move(config));
  if (!machine) return machine.error();
  if (auto st = load_probe((*machine)->memory(), probe_mode(tables[0]), layout, plan); !st) return st.error();
  auto report = (*machine)->run();
  if (!report) return report.error();
  ProbeRun run;
  run.machine = std::move(*report);
  if (!run.machine.all_done()) {
    std::string dump;
    for (const auto& v : run.machine.vcpus)
      if (!v.dump.empty() && v.end != VcpuEnd::kStopped) {
        dump = "\n" + v.dump;
        break;
      }
    return host_error("probe guest did not finish on " + std::string(backend_name(run.machine.backend)) +
                      " (" + cpu_mode_name(run.machine.mode) + "): " + run.machine.failure() + dump);
  }
  for (unsigned i = 0; i < tables.size(); ++i) {
    auto recs = read_probe_records((*machine)->memory(), layout, i, run.machine.vcpus[i].done_value);
    if (!recs) return recs.error();
    run.records.push_back(std::move(*recs));
  }
  if (options.teardown)
    options.teardown->dispose(std::move(*machine));
  else
    machine->reset();
  run.total_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return run;
}

}  // namespace cpumodel::vmm
