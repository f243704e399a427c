#include "cpumodel/vmm/verify.h"

#include <cpuid.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <tuple>

#include "cpumodel/cpuid/features.h"
#include "cpumodel/cpuid/host_probe.h"

namespace cpumodel::vmm {
namespace {

constexpr uint64_t kCr4Osxsave = 1ull << 18, kCr4Pke = 1ull << 22;
constexpr uint64_t kApicBaseEnable = 1ull << 11;
constexpr unsigned kOsxsaveBit = 27, kApicBit = 9, kOspkeBit = 4;
constexpr uint32_t kXsavecBit = 1, kXsavesBit = 3;  // CPUID.0DH.1:EAX

void set_bit(uint32_t& reg, unsigned bit, bool on) { reg = on ? reg | (1u << bit) : reg & ~(1u << bit); }

// KVM's is_guest_vendor_amd / _hygon: these vendors get zeros for out-of-range leaves.
bool amd_like(const CpuidTable& t) {
  std::string v = t.vendor();
  return v == "AuthenticAMD" || v == "AMDisbetter!" || v == "HygonGenuine";
}

// The entry after kvm_update_cpuid_runtime (it edits the stored entries in place).
CpuidRegs runtime_entry(const CpuidTable& t, uint32_t leaf, uint32_t subleaf, const VcpuCpuidState& s) {
  CpuidRegs r = t.get(leaf, subleaf);
  if (leaf == 1) {
    if (s.host_has_xsave) set_bit(r.ecx, kOsxsaveBit, s.cr4 & kCr4Osxsave);
    set_bit(r.edx, kApicBit, s.apic_base & kApicBaseEnable);
  } else if (leaf == 7 && subleaf == 0 && s.host_has_pku) {
    set_bit(r.ecx, kOspkeBit, s.cr4 & kCr4Pke);
  } else if (leaf == 0xd && subleaf == 0) {
    r.ebx = xsave_size(t, s.xcr0, false);
  } else if (leaf == 0xd && subleaf == 1 && (r.eax & ((1u << kXsavecBit) | (1u << kXsavesBit)))) {
    r.ebx = xsave_size(t, s.xcr0 | s.xss, true);
  }
  return r;
}

// The leaf whose max (EAX) bounds `leaf`'s range, as KVM's get_out_of_range_cpuid_entry picks it.
uint32_t class_leaf(uint32_t leaf) {
  if (leaf >= 0x40000000 && leaf <= 0x4fffffff) return leaf & 0xffffff00;
  if (leaf >= 0xc0000000) return 0xc0000000;
  return leaf & 0x80000000;
}

// Which feature word (leaf, subleaf, reg) is, if any.
std::optional<FeatureWord> word_of(uint32_t leaf, uint32_t subleaf, Reg reg) {
  uint32_t sub = is_indexed_leaf(leaf) ? subleaf : 0;
  for (const auto& w : feature_words())
    if (!w.is_msr && w.leaf_or_msr == leaf && w.subleaf == sub && w.reg == reg) return w.word;
  return std::nullopt;
}

std::string unnamed_bit(uint32_t leaf, uint32_t subleaf, Reg reg, unsigned bit) {
  std::string l = leaf_label(leaf);
  if (is_indexed_leaf(leaf) && subleaf != 0) l += "." + std::to_string(subleaf);  // "0DH.2", as decode's
  char buf[80];
  std::snprintf(buf, sizeof buf, "CPUID.%s:%s[bit %u]", l.c_str(), reg_name(reg), bit);
  return buf;
}

}  // namespace

uint32_t xsave_size(const CpuidTable& table, uint64_t xfeatures, bool compacted) {
  uint32_t size = 512 + 64;  // legacy area + XSAVE header
  for (unsigned i = 2; i < 64; ++i) {
    if (!(xfeatures >> i & 1)) continue;
    CpuidRegs c = table.get(0xd, i);
    uint32_t offset = compacted ? ((c.ecx & 2) ? (size + 63) / 64 * 64 : size) : c.ebx;
    size = std::max(size, offset + c.eax);
  }
  return size;
}

CpuidRegs expected_cpuid(const CpuidTable& table, uint32_t leaf, uint32_t subleaf, const VcpuCpuidState& state) {
  uint32_t function = leaf;
  std::optional<CpuidRegs> entry;
  if (table.has(leaf, subleaf)) {
    entry = runtime_entry(table, leaf, subleaf, state);
  } else if (table.has(0) && !amd_like(table)) {
    uint32_t cls = class_leaf(leaf);
    bool in_range = table.has(cls) && leaf <= table.get(cls).eax;
    if (!in_range) {
      function = table.get(0).eax;  // the max basic leaf, with the subleaf asked
      if (table.has(function, subleaf)) entry = runtime_entry(table, function, subleaf, state);
    }
  }
  CpuidRegs r = entry.value_or(CpuidRegs{});
  bool topology_leaf = function == 0xb || function == 0x1f;
  if (!entry && topology_leaf && table.has(function, 1)) {
    r.ecx = subleaf & 0xff;  // CL passes through, EDX is the x2APIC ID
    r.edx = table.get(function, 1).edx;
  }
  // Each vCPU must see its own APIC ID.
  if (function == 1 && entry) r.ebx = (r.ebx & 0x00ffffffu) | ((state.apic_id & 0xffu) << 24);
  if (topology_leaf && (entry || table.has(function, 1))) r.edx = state.apic_id;
  return r;
}

namespace {

// A bit's feature name and "CPUID.07H:EBX.avx2 [bit 5]", made once per thread: verify compares
// every vCPU, and on kvm_pvm each one differs in the same ~80 forced bits.
struct BitText {
  std::string feature, where;
};

const BitText& bit_text(uint32_t leaf, uint32_t subleaf, Reg reg, unsigned bit) {
  thread_local std::map<std::tuple<uint32_t, uint32_t, Reg, unsigned>, BitText> made;
  auto [it, fresh] = made.try_emplace({leaf, subleaf, reg, bit});
  if (fresh) {
    auto word = word_of(leaf, subleaf, reg);
    auto id = word ? feature_at(*word, bit) : std::nullopt;
    if (id) it->second.feature = feature(*id).name;
    it->second.where = word ? describe_bit(*word, bit) : unnamed_bit(leaf, subleaf, reg, bit);
  }
  return it->second;
}

}  // namespace

std::vector<BitDifference> compare_probe(const CpuidTable& intended, const std::vector<ProbeRecord>& seen,
                                         const VcpuCpuidState& state, Backend backend, const CpuidTable* host) {
  std::map<CpuidKey, CpuidRegs> first;
  for (const auto& rec : seen) first.emplace(CpuidKey{rec.leaf, rec.subleaf}, rec.regs());
  const std::string forced = std::string("forced by ") + backend_name(backend);
  const std::string changed = std::string("changed by ") + backend_name(backend);
  std::vector<BitDifference> out;
  for (const auto& [key, got] : first) {
    CpuidRegs want = expected_cpuid(intended, key.leaf, key.subleaf, state);
    for (Reg reg : {Reg::kEax, Reg::kEbx, Reg::kEcx, Reg::kEdx}) {
      uint32_t diff = want.get(reg) ^ got.get(reg);
      for (unsigned bit = 0; diff; ++bit, diff >>= 1) {
        if (!(diff & 1)) continue;
        BitDifference d;
        d.leaf = key.leaf;
        d.subleaf = key.subleaf;
        d.reg = reg;
        d.bit = bit;
        d.intended = want.get(reg) >> bit & 1;
        d.seen = got.get(reg) >> bit & 1;
        const BitText& text = bit_text(key.leaf, key.subleaf, reg, bit);
        d.feature = text.feature;
        d.where = text.where;
        bool host_bit = host && (host->get(key.leaf, key.subleaf).get(reg) >> bit & 1) == d.seen;
        d.cause = host_bit ? forced : changed;
        out.push_back(std::move(d));
      }
    }
  }
  return out;
}

CpuidTable host_cpuid_for(const CpuidTable& like, const CpuidTable* known) {
  CpuidTable host;
  bool have_ranges = known && known->has(0) && known->has(0x80000000);
  unsigned max_basic = have_ranges ? known->get(0).eax : __get_cpuid_max(0, nullptr);
  unsigned max_ext = have_ranges ? known->get(0x80000000).eax : __get_cpuid_max(0x80000000, nullptr);
  for (const auto& [key, regs] : like.entries()) {
    bool ext = key.leaf >= 0x80000000;
    bool hv = key.leaf >= 0x40000000 && key.leaf < 0x80000000;
    if (hv || key.leaf > (ext ? max_ext : max_basic)) continue;
    if (known && known->has(key.leaf, key.subleaf)) {
      host.set(key.leaf, key.subleaf, known->get(key.leaf, key.subleaf));
      continue;
    }
    unsigned a, b, c, d;
    __cpuid_count(key.leaf, key.subleaf, a, b, c, d);
    host.set(key.leaf, key.subleaf, CpuidRegs{a, b, c, d});
  }
  return host;
}

Result<HostProfile> kvm_host_profile(const std::string& device) {
  auto host = kvm_support_profile(device);
  if (host) host->cpuid = enumerate_cpuid(HostCpuidSource());
  return host;
}

Result<HostProfile> kvm_support_profile(const std::string& device) {
  auto kvm = Kvm::open(device);
  if (!kvm) return kvm.error();
  auto supported = kvm->supported_cpuid();
  if (!supported) return supported.error();
  HostProfile host;
  host.name = "this host";
  host.source = device;
  host.format = "probe";
  host.kvm_cpuid = std::move(*supported);
  host.facts["kvm_backend"] = backend_name(kvm->backend());
  return host;
}

Result<VerifyReport> verify_guest(const GuestCpuid& guest, const VerifyOptions& options) {
  size_t n = guest.tables.size();
  if (n == 0 || guest.vcpus.size() != n) return input_error("verify: no vCPUs (or tables and vCPUs disagree)");
  if (auto st = check_pin_map(options.pins, static_cast<unsigned>(n)); !st) return st.error();
  std::vector<uint32_t> apic_ids;
  for (const auto& p : guest.vcpus) apic_ids.push_back(p.apic_id);
  ProbeOptions po;
  po.device = options.device;
  po.timeout_s = options.timeout_s;
  po.pins = options.pins;
  po.on_vcpu_exit = options.on_vcpu_exit;
  po.prepared = options.prepared;
  po.teardown = options.teardown;
  auto run = run_probe(guest.tables, apic_ids, po);
  if (!run) return run.error();

  CpuidTable probed;  // every key any vCPU saw, for the host's values
  for (const auto& recs : run->records)
    for (const auto& r : recs) probed.set(r.leaf, r.subleaf, {});
  CpuidTable host = host_cpuid_for(probed, options.host_cpuid);
  VerifyReport report;
  report.backend = run->machine.backend;
  report.mode = run->machine.mode;
  report.vm_ms = run->total_ms;
  for (size_t i = 0; i < n; ++i) {
    const VcpuReport& vr = run->machine.vcpus[i];
    VcpuCpuidState state;
    state.apic_id = guest.vcpus[i].apic_id;
    state.cr4 = vr.cr4;
    state.xcr0 = vr.xcr0;
    state.apic_base = vr.apic_base;
    state.host_has_pku = host.bit(7, 0, Reg::kEcx, 3);
    state.host_has_xsave = host.bit(1, 0, Reg::kEcx, 26);
    VcpuVerify v;
    v.place = guest.vcpus[i];
    v.tid = vr.tid;
    v.host_cpu = vr.last_cpu;
    v.allowed = vr.allowed;
    v.pinned = vr.pinned;
    std::set<CpuidKey> keys;
    for (const auto& r : run->records[i]) keys.insert({r.leaf, r.subleaf});
    v.leaves_probed = keys.size();
    v.differences = compare_probe(guest.tables[i], run->records[i], state, report.backend, &host);
    report.identical = report.identical && v.differences.empty();
    report.vcpus.push_back(std::move(v));
  }
  return report;
}

}  // namespace cpumodel::vmm
