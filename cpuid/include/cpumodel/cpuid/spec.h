// The feature SPEC grammar: MODEL[,+feat][,-feat][,feat=on|off][,feat][,prop=value]...
// A pure parser: it knows the grammar, not the catalog. Errors name the column (1-based).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cpumodel/cpuid/result.h"

namespace cpumodel {

struct FeatureEdit {
  enum class Op { kPlus, kMinus, kOn, kOff };  // kOn also for a bare "feat"
  std::string name;  // as written
  Op op;
  size_t column;     // 1-based column of the token in the SPEC
  bool enables() const { return op == Op::kPlus || op == Op::kOn; }
  bool legacy() const { return op == Op::kPlus || op == Op::kMinus; }
};

// A non-boolean property: model-id=..., phys-bits=40, level=13, vendor=..., tsc-frequency=...
struct SpecProperty {
  std::string key;
  std::string value;
  size_t column;
};

struct CpuSpec {
  std::string model;                 // as written ("Haswell", "host", "x86-64-v3")
  std::vector<FeatureEdit> edits;    // in the order written
  std::vector<SpecProperty> properties;
  std::vector<std::string> warnings; // QEMU's "ambiguous" mixes and the like
};

// Parses the grammar. Whether a token is a feature or a property is decided by the caller's
// `is_property` (keys whose value is not on/off/true/false/yes/no are always properties).
Result<CpuSpec> parse_spec(std::string_view text);

// Applies QEMU's precedence to the edits: feat=on|off and bare feat first in order, then the
// legacy +feat/-feat, with -feat winning over +feat. Returns (enabled, disabled) names as written.
struct EditOutcome {
  std::vector<std::string> enable;
  std::vector<std::string> disable;
};
EditOutcome resolve_edits(const CpuSpec& spec);

// Prints a spec back (canonical order: model, properties, feat=on/off, +/-).
std::string format_spec(const CpuSpec& spec);

}  // namespace cpumodel
