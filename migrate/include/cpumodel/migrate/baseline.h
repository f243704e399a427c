// Cluster baseline: what every host of a cluster can give a guest, named as a catalog model plus
// a delta ("Haswell-v4,+abm,-pcid"), with the non-feature values settled (phys-bits, XSAVE,
// level/xlevel, TSC).
//
// Ranking rule (also printed by --explain): among catalog models of the hosts' vendor that every
// host runs -- a model runs when the features some host lacks are only ones QEMU itself ships the
// model with and without (they differ between versions of that model, e.g. hle/rtm, spec-ctrl);
// those become -f -- prefer
//   1. the newest generation (ModelEntry::generation),
//   2. a model whose signature matches more of the hosts' family/model,
//   3. the fewest -f,
//   4. the highest version.
// Extra features every host shares that the model lacks are added as +f (migratable ones only).
// invtsc stays only when every host reports a TSC frequency within 250 ppm of the others and the
// user pins --tsc-khz. Every host must compare IDENTICAL or SUPERSET against the result: that is
// checked on every run, and a failure is reported as an internal error (a bug).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cpumodel/cpuid/features.h"
#include "cpumodel/cpuid/profile.h"
#include "cpumodel/cpuid/result.h"
#include "cpumodel/models/catalog.h"
#include "cpumodel/models/host_check.h"

namespace cpumodel {

inline constexpr double kTscTolerancePpm = 250.0;  // Linux KVM's tsc_tolerance_ppm

// What one host can give a guest, reduced to what a baseline needs (small: kept for 100,000 hosts).
struct HostSummary {
  std::string name;
  std::string vendor;               // "GenuineIntel"
  unsigned family = 0, model = 0, stepping = 0;
  FeatureSet features;              // guest features (KVM-supported CPUID, else raw)
  bool from_kvm = false;            // false: raw CPUID was used (no KVM data in the profile)
  unsigned phys_bits = 0;           // CPUID.80000008H:EAX[7:0]
  uint64_t xcr0 = 0;                // XSAVE user components, CPUID.0DH.0:EDX:EAX
  uint64_t xss = 0;                 // XSAVE supervisor components, CPUID.0DH.1:EDX:ECX
  uint32_t xsave_size = 0;          // CPUID.0DH.0:ECX, area size for every supported component
  std::array<uint32_t, 32> xsave_end{};  // per user component >= 2: offset + size (0 if absent)
  uint32_t level = 0, xlevel = 0;   // max basic / extended leaf
  std::optional<double> tsc_khz;    // profile's, else CPUID.15H when it gives a frequency
};

// Features are host_guest_features() of models/host_check.h: KVM-supported CPUID when the profile
// has it, else raw CPUID plus what KVM synthesises on every host.
HostSummary summarize_host(const HostProfile& profile);
// Loads PROFILE arguments (bundles or single profiles) straight into summaries; for large
// bundles this avoids building every HostProfile.
Result<std::vector<HostSummary>> load_host_summaries(const std::vector<std::string>& paths);

struct BaselineOptions {
  bool migratable = false;          // --migratable: drop non-migratable features, the model's too
  bool per_vendor = false;          // --per-vendor: one result per vendor group instead of an error
  std::optional<double> tsc_khz;    // --tsc-khz: pin the guest TSC frequency
  const Catalog* catalog = nullptr; // when set, the result's -cpu string is expanded and checked
};

// A candidate model and what stands between it and the hosts.
struct ModelVerdict {
  const ModelEntry* model = nullptr;
  bool runnable = false;
  unsigned signature_hosts = 0;     // hosts whose family/model the model's signatures match
  FeatureSet missing;               // model features not offered by every host
  FeatureSet blocking;              // missing features that cannot be dropped with -f
};

struct DroppedFeature {
  FeatureId id;
  std::vector<size_t> lacking;      // hosts (indices into the input) without it
};

enum class HostVerdict { kIdentical, kSuperset };

struct Baseline {
  std::string vendor;
  std::vector<size_t> hosts;        // indices into the input, this vendor group
  FeatureSet common;                // intersection of the hosts' features (dependencies closed)
  FeatureSet offered;               // common after the invtsc rule and --migratable
  FeatureSet features;              // the result, fully expanded
  const ModelEntry* model = nullptr;  // null: no catalog model fits every host
  FeatureSet added, removed;        // +f / -f against the model
  unsigned phys_bits = 0;
  uint64_t xcr0 = 0, xss = 0;
  uint32_t xsave_size = 0;          // the largest area the common components take on any host
  uint32_t level = 0, xlevel = 0;
  bool invtsc = false;
  std::optional<double> tsc_khz;
  std::vector<std::string> notes;   // raw CPUID used, invtsc dropped, no common model...
  std::vector<DroppedFeature> dropped;       // offered by some host but not all
  std::vector<ModelVerdict> candidates;      // every model of the vendor, best rank first
  std::vector<HostVerdict> verdicts;         // per host of `hosts`, from the invariant check

  // "Haswell-v4,+abm,-hle" ("base,+..." when no model fits).
  std::string cpu_string() const;
};

// The ranking rule above, in words (for --explain and --help).
const char* ranking_rule();

// Features QEMU ships some version of this model with and some without (removable with -f).
FeatureSet version_variable_features(std::span<const ModelEntry> models, const ModelEntry& model);

// One Baseline per vendor group (one group unless hosts mix vendors and per_vendor is set).
// Errors: no hosts; mixed vendors without per_vendor (lists the groups); a failed invariant check.
Result<std::vector<Baseline>> compute_baseline(std::span<const HostSummary> hosts,
                                               std::span<const ModelEntry> models,
                                               const BaselineOptions& options);

// The intersection of every host's features (the fast core; FeatureSet bitsets).
FeatureSet intersect_features(std::span<const HostSummary> hosts);

// --add: what adding one host costs, as lines ("loses avx512f, avx512dq", "model Skylake-Server-v4
// -> Cascadelake-Server-v1", "phys-bits 46 -> 43").
std::vector<std::string> describe_cost(const Baseline& before, const Baseline& after);

// --explain: dropped features with the hosts lacking them, newer models and what blocks them,
// non-feature values and where they come from. Host lists are shortened past `max_hosts`.
std::vector<std::string> explain_baseline(const Baseline& b, std::span<const HostSummary> hosts,
                                          size_t max_hosts = 8);

}  // namespace cpumodel
