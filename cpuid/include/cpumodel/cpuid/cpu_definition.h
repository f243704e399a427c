// A fully resolved guest CPU definition: what the catalog produces from a SPEC and what the
// guest-CPUID builder consumes. Plain data; no catalog knowledge.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cpumodel/cpuid/features.h"

namespace cpumodel {

// One cache level as QEMU's CPUCacheInfo describes it.
struct CacheLevel {
  enum class Type { kData, kInstruction, kUnified } type = Type::kUnified;
  unsigned level = 1;
  unsigned size_kib = 0;
  unsigned line_size = 64;
  unsigned associativity = 0;  // ways; 0 = fully associative
  unsigned partitions = 1;
  unsigned sets = 0;
  unsigned lines_per_tag = 1;
  bool self_init = true;
  bool no_invd_sharing = false;
  bool inclusive = false;
  bool complex_indexing = false;
  enum class Shared { kCore, kDie, kSocket } shared = Shared::kCore;
};

struct CacheInfo {
  std::vector<CacheLevel> levels;  // L1d, L1i, L2, L3 (as the model has them)
};

struct CpuDefinition {
  std::string model;        // resolved, versioned name ("Haswell-v4") or "host"/"max"
  std::string vendor;       // "GenuineIntel", "AuthenticAMD", ...
  unsigned family = 0, model_number = 0, stepping = 0;
  uint32_t level = 0;       // max basic leaf the model asks for
  uint32_t xlevel = 0;      // max extended leaf
  uint32_t xlevel2 = 0;     // 0xC000xxxx range (Centaur/Zhaoxin)
  std::string model_id;     // brand string, <= 48 chars
  FeatureSet features;      // after versions, edits and closure
  std::optional<CacheInfo> cache;   // QEMU's legacy cache info when absent
  std::optional<unsigned> phys_bits;
  bool host_phys_bits = false;
  bool pmu = false;
  std::optional<uint64_t> tsc_khz;
  std::optional<uint64_t> arch_capabilities;  // MSR 0x10a value the model implies
  std::vector<std::string> notes;   // what the closure did and why
};

}  // namespace cpumodel
