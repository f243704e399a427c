// SPEC -> full CPU definition: model resolution, properties, feature edits with QEMU's
// precedence, the dependency closure and optional host filtering.
#include <algorithm>
#include <cctype>

#include "cpumodel/models/catalog.h"
#include "cpumodel/models/host_check.h"

namespace cpumodel {
namespace {

std::string norm(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = (c == '_') ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Error col_error(size_t column, const std::string& what) {
  return input_error("cpu spec column " + std::to_string(column) + ": " + what);
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::string brand_string(const CpuidTable& t) {
  std::string s;
  for (uint32_t leaf = 0x80000002; leaf <= 0x80000004; ++leaf) {
    CpuidRegs r = t.get(leaf);
    for (uint32_t v : {r.eax, r.ebx, r.ecx, r.edx})
      for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  s = s.substr(0, s.find('\0'));
  size_t first = s.find_first_not_of(' ');
  return first == std::string::npos ? "" : s.substr(first);
}

// `host` and `max`: the host's identity and what KVM (or the raw CPUID) can give a guest.
CpuDefinition host_definition(const HostProfile& host, const std::string& name, bool migratable) {
  CpuDefinition d;
  d.model = name;
  const CpuidTable& raw = host.cpuid;
  d.vendor = raw.vendor();
  uint32_t eax = raw.get(1).eax;
  unsigned base_family = (eax >> 8) & 0xf;
  d.family = base_family + (base_family == 0xf ? (eax >> 20) & 0xff : 0);
  d.model_number = ((eax >> 4) & 0xf) | ((base_family == 6 || base_family == 0xf) ? ((eax >> 16) & 0xf) << 4 : 0);
  d.stepping = eax & 0xf;
  d.model_id = brand_string(raw);
  d.level = host.guest_cpuid().max_basic();
  d.xlevel = host.guest_cpuid().max_extended();
  d.features = host_guest_features(host);
  if (migratable) d.features &= migratable_features();
  d.pmu = true;
  // QEMU's host/max CPUs default to host-phys-bits=on (host_cpu_max_instance_init): the guest sees
  // the host's physical address width, not the 40-bit default.
  d.host_phys_bits = true;
  return d;
}

// "46", "0x1f", or with a decimal k/M/G suffix ("2.5G" for tsc-frequency).
std::optional<uint64_t> parse_number(std::string_view v) {
  std::string s(v);
  uint64_t mult = 1;
  if (!s.empty()) {
    char last = static_cast<char>(std::tolower(static_cast<unsigned char>(s.back())));
    if (last == 'k') mult = 1000;
    else if (last == 'm') mult = 1000000;
    else if (last == 'g') mult = 1000000000;
    if (mult != 1) s.pop_back();
  }
  size_t used = 0;
  try {
    if (mult != 1 && s.find('.') != std::string::npos) {
      double d = std::stod(s, &used);
      if (used != s.size() || d < 0) return std::nullopt;
      return static_cast<uint64_t>(d * double(mult) + 0.5);
    }
    uint64_t n = std::stoull(s, &used, 0);
    if (used == 0 || used != s.size()) return std::nullopt;
    return n * mult;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

Status apply_property(const SpecProperty& p, CpuDefinition& d, Expansion& x) {
  std::string k = norm(p.key);
  if (k == "model-id") {
    if (p.value.size() > 48) return col_error(p.column, "model-id is longer than 48 characters");
    d.model_id = p.value;
    return ok_status();
  }
  if (k == "vendor") {
    if (p.value.size() != 12) return col_error(p.column, "vendor must be exactly 12 characters (e.g. GenuineIntel)");
    d.vendor = p.value;
    return ok_status();
  }
  auto n = parse_number(p.value);
  struct Limit { const char* key; uint64_t max; };
  static constexpr Limit kLimits[] = {{"family", 0xff + 0xf}, {"model", 0xff}, {"stepping", 0xf},
                                      {"level", 0xffffffff}, {"min-level", 0xffffffff}, {"xlevel", 0xffffffff},
                                      {"min-xlevel", 0xffffffff}, {"xlevel2", 0xffffffff}, {"phys-bits", 52},
                                      {"tsc-frequency", UINT64_MAX}, {"avx10-version", 0xff}};
  const Limit* lim = nullptr;
  for (const auto& l : kLimits)
    if (k == l.key) lim = &l;
  if (!lim) return col_error(p.column, "unknown property '" + p.key + "' (or a feature with a non-boolean value)");
  if (!n || *n > lim->max)
    return col_error(p.column, "'" + p.key + "' needs a number up to " + std::to_string(lim->max) + ", got '" + p.value + "'");
  if (k == "family") d.family = unsigned(*n);
  else if (k == "model") d.model_number = unsigned(*n);
  else if (k == "stepping") d.stepping = unsigned(*n);
  else if (k == "level" || k == "min-level") d.level = uint32_t(*n);
  else if (k == "xlevel" || k == "min-xlevel") d.xlevel = uint32_t(*n);
  else if (k == "xlevel2") d.xlevel2 = uint32_t(*n);
  else if (k == "phys-bits") {
    if (*n < 32) return col_error(p.column, "phys-bits must be between 32 and 52");
    d.phys_bits = unsigned(*n);
  } else if (k == "tsc-frequency") d.tsc_khz = *n / 1000;
  else x.notes.push_back(p.key + "=" + p.value + " is carried as is");
  return ok_status();
}

// Boolean QEMU properties that are not feature bits.
bool apply_bool_property(const std::string& n, bool on, CpuDefinition& d, bool& migratable) {
  if (n == "pmu") d.pmu = on;
  else if (n == "host-phys-bits") d.host_phys_bits = on;
  else if (n == "migratable") migratable = on;
  else if (n == "check" || n == "enforce") { /* the caller decides filtering/enforcing */ }
  else return false;
  return true;
}

size_t column_of(const CpuSpec& spec, const std::string& name) {
  for (const auto& e : spec.edits)
    if (norm(e.name) == norm(name)) return e.column;
  return 1;
}

// Notes for what the closure did, one line per feature the user touched.
void closure_notes(const FeatureSet& on, const FeatureSet& off, const FeatureSet& before, Expansion& x) {
  for (FeatureId id : off.ids()) {
    FeatureSet one;
    one.add(id);
    FeatureSet gone = dependents_of(one) & before & x.removed_by_closure;
    if (!gone.empty())
      x.notes.push_back(std::string("-") + feature(id).name + " also removes " + join(gone.names()) + " (they need " +
                        feature(id).name + ")");
  }
  for (FeatureId id : on.ids()) {
    FeatureSet one;
    one.add(id);
    FeatureSet need = with_requirements(one) - one;
    FeatureSet added = need & x.added_by_closure;
    if (!added.empty())
      x.notes.push_back(std::string("+") + feature(id).name + " also adds " + join(added.names()) + " (" +
                        feature(id).name + " needs them)");
    FeatureSet blocked = need & off;
    if (!blocked.empty() && !x.cpu.features.has(id))
      x.warnings.push_back(std::string(feature(id).name) + " was requested but is dropped: it needs " +
                           join(blocked.names()) + ", which the spec disables");
  }
}

FeatureSet named(std::initializer_list<const char*> names) {
  FeatureSet s;
  for (const char* n : names)
    if (auto id = find_feature(n)) s.add(*id);
  return s;
}

// QEMU 7.2's accelerator defaults (target/i386/cpu.c kvm_default_props, tcg_default_props).
void accelerator_defaults(Accelerator a, FeatureSet& on, FeatureSet& off) {
  if (a == Accelerator::kKvm) {
    on = named({"x2apic", "kvmclock", "kvm-nopiodelay", "kvm-asyncpf", "kvm-steal-time", "kvm-pv-eoi",
                "kvmclock-stable-bit"});
    off = named({"acpi", "monitor", "svm"});
  } else if (a == Accelerator::kTcg) {
    off = named({"vme"});
  }
}

// QEMU raises the model's level/xlevel/xlevel2 to cover every leaf a feature lives in
// (x86_cpu_adjust_feat_level, full-cpuid-auto-level=on) and xlevel to 0x8000000A for svm.
void auto_level(CpuDefinition& d, bool level_fixed, bool xlevel_fixed) {
  for (FeatureId id : d.features.ids()) {
    const FeatureWordInfo& w = word_info(feature(id).word);
    if (w.is_msr) continue;
    uint32_t leaf = w.leaf_or_msr;
    if (std::string_view(feature(id).name) == "svm") leaf = 0x8000000a;
    if (leaf == 0x14 || (leaf >= 0x40000000 && leaf < 0x80000000)) continue;  // intel-pt / KVM leaves
    if (leaf < 0x40000000 && !level_fixed) d.level = std::max(d.level, leaf);
    else if (leaf >= 0x80000000 && leaf < 0xc0000000 && !xlevel_fixed) d.xlevel = std::max(d.xlevel, leaf);
    else if (leaf >= 0xc0000000) d.xlevel2 = std::max(d.xlevel2, leaf);
  }
}

}  // namespace

Result<Expansion> Catalog::expand(std::string_view spec_text, const HostProfile* host, bool filter_by_host) const {
  auto spec = parse_spec(spec_text);
  if (!spec) return spec.error();
  return expand(*spec, host, filter_by_host);
}

Result<Expansion> Catalog::expand(const CpuSpec& spec, const HostProfile* host, bool filter_by_host) const {
  const ModelEntry* e = find(spec.model);
  if (!e) return input_error(unknown_model_message(spec.model));
  Expansion x;
  x.warnings = spec.warnings;
  bool needs_host = e->kind == ModelEntry::Kind::kHost || e->kind == ModelEntry::Kind::kMax;
  if (needs_host && !host)
    return input_error("CPU model '" + e->name + "' is this host's CPU: give a host profile (--host PROFILE)");
  bool migratable = e->kind != ModelEntry::Kind::kMax;  // host: migratable=on by default; max: all of it
  if (e->name != spec.model) {
    std::string why = norm(spec.model) == norm(e->alias) ? "alias" : norm(spec.model) == norm(e->name) ? "name" : "default version";
    if (why != "name") x.resolved_from = spec.model + " -> " + e->name + " (" + why + ")";
  }
  if (e->deprecated)
    x.warnings.push_back("CPU model '" + e->name + "' is deprecated" +
                         (e->deprecation_note.empty() ? std::string() : ": " + e->deprecation_note));
  // Edits first: boolean properties (migratable, pmu...) decide the starting definition.
  CpuDefinition flags;
  EditOutcome edits = resolve_edits(spec);
  FeatureSet on, off;
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& name : pass == 0 ? edits.enable : edits.disable) {
      if (apply_bool_property(norm(name), pass == 0, flags, migratable)) continue;
      if (norm(name).rfind("vmx-", 0) == 0) {
        x.warnings.push_back("'" + name + "' ignored: VMX capability bits are not modelled");
        continue;
      }
      auto id = find_feature(name);
      if (!id) return col_error(column_of(spec, name), unknown_feature_message(name));
      (pass == 0 ? on : off).add(*id);
    }
  }
  x.cpu = needs_host ? host_definition(*host, e->name, migratable) : e->definition;
  for (const auto& ed : spec.edits) {
    std::string n = norm(ed.name);
    if (n == "pmu") x.cpu.pmu = flags.pmu;
    if (n == "host-phys-bits") x.cpu.host_phys_bits = flags.host_phys_bits;
  }
  bool level_fixed = false, xlevel_fixed = false;
  for (const auto& p : spec.properties) {
    if (auto s = apply_property(p, x.cpu, x); !s) return s.error();
    level_fixed |= norm(p.key) == "level";
    xlevel_fixed |= norm(p.key) == "xlevel";
  }
  FeatureSet& f = x.cpu.features;
  FeatureSet accel_on, accel_off;
  if (e->kind == ModelEntry::Kind::kModel) accelerator_defaults(accel_, accel_on, accel_off);
  FeatureSet accel_dropped = f & accel_off;
  f |= accel_on;
  f -= accel_off;
  if (!accel_dropped.empty() && accel_ == Accelerator::kKvm)
    x.notes.push_back("under KVM, QEMU turns " + join(accel_dropped.names()) +
                      " off (kvm_default_props); add +feature to keep it");
  f |= on;
  f -= off;
  x.requested_on = on;
  x.requested_off = off;
  x.added_by_closure = with_requirements(on) - f - off;
  f |= x.added_by_closure;
  FeatureSet before = f | off;
  x.removed_by_closure = dependents_of(off | (accel_off - on)) & f;
  f -= x.removed_by_closure;
  closure_notes(on, off, before, x);
  if (filter_by_host && host) {
    FeatureSet lacking = f - host_guest_features(*host);
    FeatureSet dep = dependents_of(lacking) & (f - lacking);
    x.filtered_by_host = lacking | dep;
    f -= x.filtered_by_host;
    if (!x.filtered_by_host.empty())
      x.notes.push_back("the host lacks " + join(lacking.names()) +
                        (dep.empty() ? std::string() : "; also dropped (they need those): " + join(dep.names())));
  }
  auto_level(x.cpu, level_fixed, xlevel_fixed);
  x.cpu.notes = x.notes;
  return x;
}

}  // namespace cpumodel
