// --format firecracker: a Firecracker custom CPU template (docs/cpu_templates/cpu-templates.md):
// cpuid_modifiers with one 32-character bitmap per register ('1' set, '0' clear, 'x' keep the
// host's bit) and msr_modifiers for IA32_ARCH_CAPABILITIES (64 characters).
#include <cstdio>
#include <map>

#include "cpumodel/cpuid/json.h"
#include "cpumodel/migrate/format.h"

namespace cpumodel {
namespace {

// Bits the CPU computes at run time (they mirror CR4) or that Firecracker sets itself: left 'x'.
bool left_to_runtime(FeatureId id) {
  static const FeatureSet set = [] {
    FeatureSet s;
    for (const char* n : {"osxsave", "ospke", "hypervisor"})
      if (auto f = find_feature(n)) s.add(*f);
    return s;
  }();
  return set.has(id);
}

// MSB first, as Firecracker writes them.
std::string bitmap(uint64_t known, uint64_t set, unsigned width) {
  std::string s = "0b";
  for (unsigned i = width; i-- > 0;) s += !(known >> i & 1) ? 'x' : (set >> i & 1) ? '1' : '0';
  return s;
}

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%x", v);
  return buf;
}

}  // namespace

Result<std::string> baseline_firecracker(const Baseline& b) {
  // (leaf, subleaf) -> register -> (known bits, set bits); MSR index -> same, 64 bits wide.
  std::map<std::pair<uint32_t, uint32_t>, std::map<Reg, std::pair<uint32_t, uint32_t>>> cpuid;
  std::map<uint32_t, std::pair<uint64_t, uint64_t>> msrs;
  for (FeatureId id = 0; id < feature_count(); ++id) {
    const FeatureInfo& f = feature(id);
    const FeatureWordInfo& w = word_info(f.word);
    if (left_to_runtime(id)) continue;
    bool on = b.features.has(id);
    if (w.is_msr) {
      if (w.leaf_or_msr != 0x10a) continue;  // Firecracker templates carry ARCH_CAPABILITIES only
      unsigned bit = f.bit + (w.reg == Reg::kEdx ? 32 : 0);
      auto& [known, set] = msrs[w.leaf_or_msr];
      known |= uint64_t{1} << bit;
      if (on) set |= uint64_t{1} << bit;
      continue;
    }
    if (w.leaf_or_msr >= 0x40000000 && w.leaf_or_msr < 0x50000000) continue;  // hypervisor leaves: Firecracker's
    auto& [known, set] = cpuid[{w.leaf_or_msr, w.subleaf}][w.reg];
    known |= 1u << f.bit;
    if (on) set |= 1u << f.bit;
  }
  static const char* const kRegs[] = {"eax", "ebx", "ecx", "edx"};
  JsonWriter j;
  j.begin_object();
  j.key("cpuid_modifiers").begin_array();
  for (const auto& [key, regs] : cpuid) {
    j.begin_object().field("leaf", hex(key.first)).field("subleaf", hex(key.second));
    j.field("flags", is_indexed_leaf(key.first) ? 1 : 0);  // KVM_CPUID_FLAG_SIGNIFCANT_INDEX
    j.key("modifiers").begin_array();
    for (const auto& [reg, bits] : regs)
      j.begin_object().field("register", kRegs[static_cast<int>(reg)]).field("bitmap", bitmap(bits.first, bits.second, 32)).end_object();
    j.end_array().end_object();
  }
  j.end_array();
  j.key("msr_modifiers").begin_array();
  for (const auto& [index, bits] : msrs)
    j.begin_object().field("addr", hex(index)).field("bitmap", bitmap(bits.first, bits.second, 64)).end_object();
  j.end_array();
  j.end_object();
  return j.str() + "\n";
}

}  // namespace cpumodel
