// The CPU model catalog: data/models/*.yaml (plus user --models-dir), validated, resolved
// (unversioned name -> default version, alias -> version) and expanded from a SPEC.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cpumodel/cpuid/cpu_definition.h"
#include "cpumodel/cpuid/profile.h"
#include "cpumodel/cpuid/result.h"
#include "cpumodel/cpuid/spec.h"

namespace cpumodel {

// A family/model range a host signature is recognised by ("this host is a Haswell").
struct Signature {
  std::string vendor;
  unsigned family = 0;
  unsigned model_min = 0, model_max = 0;
};

// One versioned model, fully resolved (versions applied, inheritance flattened).
struct ModelEntry {
  std::string name;          // versioned: "Haswell-v4"; unversioned models (base, max, host) as is
  std::string base_name;     // "Haswell"
  unsigned version = 0;      // 0 for unversioned
  std::string alias;         // named alias of this version ("Haswell-noTSX-IBRS"), or ""
  std::string note;          // version note, as QEMU's -cpu help shows it
  bool deprecated = false;
  unsigned generation = 0;   // ordering within a vendor: higher is newer (used to rank baselines)
  std::vector<Signature> signatures;
  CpuDefinition definition;  // definition.model == name
  std::string source;        // file:line it was defined at
};

// What expand() produced, with the reasons a person wants.
struct Expansion {
  CpuDefinition cpu;                  // cpu.model = resolved versioned name
  std::string resolved_from;          // "Haswell -> Haswell-v1 (default version)"
  FeatureSet requested_on, requested_off;  // the edits, after QEMU's precedence
  FeatureSet removed_by_closure;      // features dropped because something they need was removed
  FeatureSet added_by_closure;        // features added because an enabled feature needs them
  FeatureSet filtered_by_host;        // dropped because the host (KVM) lacks them (check mode)
  std::vector<std::string> notes;     // "-avx also removes avx2, fma, f16c (they need avx)"
  std::vector<std::string> warnings;  // ambiguous mixes, deprecated models...
};

class Catalog {
 public:
  // Loads every *.yaml in `dirs` (in order); errors name file:line.
  static Result<Catalog> load(const std::vector<std::string>& dirs);
  // The installed or source-tree catalog (CPUMODEL_DATA_DIR env overrides), plus extra dirs.
  static Result<Catalog> load_default(const std::vector<std::string>& extra_dirs = {});

  const std::vector<ModelEntry>& entries() const { return entries_; }
  // Versioned name, unversioned name (default version) or alias -> entry.
  const ModelEntry* find(std::string_view name) const;
  // "unknown CPU model 'Haswel' (did you mean 'Haswell'?)"
  std::string unknown_model_message(std::string_view name) const;

  // SPEC -> full definition. `host` is needed for `host`/`max` and for check/enforce filtering
  // (filtering only when `filter_by_host`).
  Result<Expansion> expand(const CpuSpec& spec, const HostProfile* host = nullptr,
                           bool filter_by_host = false) const;
  Result<Expansion> expand(std::string_view spec_text, const HostProfile* host = nullptr,
                           bool filter_by_host = false) const;

 private:
  std::vector<ModelEntry> entries_;
  struct Impl;
  friend struct Impl;
};

}  // namespace cpumodel
