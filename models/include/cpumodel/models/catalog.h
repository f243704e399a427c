// The CPU model catalog: data/models/*.yaml (plus user --models-dir), validated, resolved
// (unversioned name -> default version, alias -> version) and expanded from a SPEC.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cpumodel/cpuid/cpu_definition.h"
#include "cpumodel/cpuid/profile.h"
#include "cpumodel/cpuid/result.h"
#include "cpumodel/cpuid/spec.h"

namespace cpumodel {
namespace detail {
struct CompiledName;
}  // namespace detail

// A family/model range a host signature is recognised by ("this host is a Haswell").
struct Signature {
  std::string vendor;
  unsigned family = 0;
  unsigned model_min = 0, model_max = 0;
  unsigned stepping_min = 0, stepping_max = 15;  // e.g. Skylake-Server vs Cascadelake (both model 0x55)
  bool matches(std::string_view v, unsigned fam, unsigned model, unsigned stepping) const {
    return v == vendor && fam == family && model >= model_min && model <= model_max &&
           stepping >= stepping_min && stepping <= stepping_max;
  }
};

// One property a version sets (QEMU's PropValue), kept for `show`: "hle" = "off".
struct VersionProp {
  std::string key;
  std::string value;
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
  // Extensions (beyond the pinned interface):
  enum class Kind { kModel, kBase, kHost, kMax } kind = Kind::kModel;
  bool vendor_neutral = false;        // x86-64-vN, qemu64...: no vendor rule in compare
  std::string deprecation_note;       // why, when deprecated
  std::string cache_name;             // QEMU's CPUCaches name ("epyc_rome_cache_info"), or ""
  std::vector<VersionProp> changes;   // what this version's props set (empty for v1)
  std::vector<VersionProp> extra_props;  // non-feature props kept as written (avx10-version=1)
  std::string parent;                 // `base:` model the definition was derived from, or ""
  bool is_default_version = false;    // the unversioned name resolves here
};

// QEMU's rule for unversioned names: `-machine none` and every pc/q35 machine type from 4.1 to
// 7.2 resolve them to -v1 (default_cpu_version = 1); 4.0 and older use the legacy definition,
// which is v1's definition plus machine compat props. So: unversioned -> v1.
inline constexpr unsigned kDefaultModelVersion = 1;

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

// The accelerator whose defaults expand() applies on top of a model, as QEMU 7.2's
// x86_cpu_load_model does: kKvm (the default here: guests run on KVM) turns x2apic and the KVM
// paravirtual bits on and acpi, monitor, svm off (kvm_default_props); kTcg turns vme off
// (tcg_default_props); kNone gives the definition as cpu.c writes it.
enum class Accelerator { kKvm, kTcg, kNone };

class Catalog {
 public:
  // Loads every *.yaml in `dirs` (in order); errors name file:line.
  static Result<Catalog> load(const std::vector<std::string>& dirs);
  // The installed or source-tree catalog (CPUMODEL_DATA_DIR env overrides), plus extra dirs.
  static Result<Catalog> load_default(const std::vector<std::string>& extra_dirs = {});

  // Compiled catalogs (tools/catalog_compile, at build time): load() takes the entries from a
  // registered one when the files it is asked to load are byte for byte the files it was compiled
  // from, with the same feature dictionary and an intact checksum; otherwise it parses the YAML.
  // The blob must outlive every Catalog loaded from it (and their copies): their entries are
  // decoded from it as they are asked for. CPUMODEL_COMPILED_CATALOG=off in the environment makes
  // load() always parse.
  static void register_compiled(std::string_view blob);
  // This catalog in that compiled form.
  Result<std::string> compile() const;
  // Whether load() took this catalog's entries from a compiled blob.
  bool from_compiled() const { return from_compiled_; }

  // Every entry. From a compiled catalog, entries are decoded when first needed: find() (and so
  // expand()) decodes only the entry it returns; this, and recognise(), decode them all once. Safe
  // from several threads. find(), versions_of() and recognise() return the same object for the
  // same entry every time; an element here is that object too, unless find() had decoded the
  // entry on its own first (then it is an equal copy).
  const std::vector<ModelEntry>& entries() const;
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

  // Unversioned names in catalog order with the versioned name they resolve to.
  std::vector<std::pair<std::string, std::string>> unversioned_names() const;
  // Every version of one model (by any of its names), oldest first.
  std::vector<const ModelEntry*> versions_of(std::string_view name) const;
  // The newest model whose signatures match a host CPU (vendor + family/model/stepping), or null.
  const ModelEntry* recognise(std::string_view vendor, unsigned family, unsigned model,
                              unsigned stepping) const;
  void set_accelerator(Accelerator a) { accel_ = a; }
  Accelerator accelerator() const { return accel_; }
  // The data files the catalog was loaded from.
  const std::vector<std::string>& files() const { return files_; }

 private:
  std::vector<ModelEntry> entries_;  // parsed from YAML; empty while lazy_ holds them
  struct Lazy;                       // a compiled catalog's entries, decoded as asked
  std::shared_ptr<Lazy> lazy_;
  std::vector<std::string> files_;
  std::vector<std::pair<std::string, size_t>> names_;  // every accepted name -> entry index, sorted
  Accelerator accel_ = Accelerator::kKvm;
  uint64_t files_fingerprint_ = 0;
  bool from_compiled_ = false;
  void build_index();
  const ModelEntry* entry_at(size_t index) const;
  // Entry `index`'s names, kind and version, without decoding it (a compiled catalog's directory).
  size_t entry_count() const;
  detail::CompiledName names_at(size_t index) const;
  struct Impl;
  friend struct Impl;
};

}  // namespace cpumodel
