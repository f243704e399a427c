// The catalog: loads data/models/*.yaml (+ user dirs), validates, flattens inheritance and
// versions into one ModelEntry per versioned model, and resolves names.
#include "cpumodel/models/catalog.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "compiled_catalog.h"
#include "raw_model.h"

namespace cpumodel {

using detail::RawModel;
using detail::RawName;
using detail::RawProp;
using detail::Where;

namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxModelId = 48;

Error at(const Where& w, const std::string& what) { return input_error(w.str() + ": " + what); }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

Result<FeatureId> feature_id(const RawName& n) {
  auto id = find_feature(n.name);
  if (!id) return at(n.where, unknown_feature_message(n.name));
  return *id;
}

// A model's definition before versions: own fields over its parent's.
struct Resolved {
  CpuDefinition def;
  std::string cache_name;
  bool done = false;
};

class Builder {
 public:
  Status add_file(const std::string& path, const std::string& text) {
    auto file = detail::parse_model_text(text, path);
    if (!file) return file.error();
    for (auto& def : file->caches) {
      if (auto it = caches_.find(def.name); it != caches_.end())
        return at(def.where, "duplicate cache info '" + def.name + "' (first defined at " + it->second.where.str() + ")");
      caches_[def.name] = std::move(def);
    }
    for (auto& m : file->models) {
      if (auto it = index_.find(m.name); it != index_.end())
        return at(m.where, "duplicate model '" + m.name + "' (first defined at " + raw_[it->second].where.str() + ")");
      index_[m.name] = raw_.size();
      raw_.push_back(std::move(m));
    }
    return ok_status();
  }

  Result<std::vector<ModelEntry>> build() {
    resolved_.assign(raw_.size(), {});
    for (size_t i = 0; i < raw_.size(); ++i) {
      std::vector<size_t> chain;
      if (auto s = resolve(i, chain); !s) return s.error();
    }
    std::vector<ModelEntry> out;
    for (size_t i = 0; i < raw_.size(); ++i)
      if (auto s = expand_versions(i, out); !s) return s.error();
    if (auto s = check_names(out); !s) return s.error();
    return out;
  }

 private:
  Status resolve(size_t i, std::vector<size_t>& chain) {
    if (resolved_[i].done) return ok_status();
    const RawModel& m = raw_[i];
    if (std::find(chain.begin(), chain.end(), i) != chain.end()) {
      std::string cycle;
      for (size_t j : chain) cycle += raw_[j].name + " -> ";
      return at(m.where, "inheritance cycle: " + cycle + m.name);
    }
    chain.push_back(i);
    Resolved r;
    if (!m.base.empty()) {
      auto it = index_.find(m.base);
      if (it == index_.end()) return at(m.base_where, "unknown base model '" + m.base + "'" + suggest(m.base));
      if (auto s = resolve(it->second, chain); !s) return s.error();
      r = resolved_[it->second];
      if (m.features) return at(m.where, "model '" + m.name + "' has a base: list its difference with add/remove, not 'features'");
    } else if (m.kind == ModelEntry::Kind::kModel) {
      if (auto s = require_identity(m); !s) return s.error();
    }
    if (auto s = apply_own(m, r); !s) return s.error();
    r.done = true;
    resolved_[i] = r;
    chain.pop_back();
    return ok_status();
  }

  static Status require_identity(const RawModel& m) {
    std::vector<std::string> missing;
    if (!m.vendor) missing.push_back("vendor");
    if (!m.family) missing.push_back("family");
    if (!m.model) missing.push_back("model");
    if (!m.stepping) missing.push_back("stepping");
    if (!m.level) missing.push_back("level");
    if (!m.xlevel) missing.push_back("xlevel");
    if (!m.model_id) missing.push_back("model-id");
    if (!m.features) missing.push_back("features");
    if (missing.empty()) return ok_status();
    std::string list;
    for (auto& s : missing) list += (list.empty() ? "" : ", ") + s;
    return at(m.where, "model '" + m.name + "' has no base and lacks: " + list);
  }

  Status apply_own(const RawModel& m, Resolved& r) {
    CpuDefinition& d = r.def;
    if (m.vendor) d.vendor = *m.vendor;
    if (m.family) d.family = *m.family;
    if (m.model) d.model_number = *m.model;
    if (m.stepping) d.stepping = *m.stepping;
    if (m.level) d.level = *m.level;
    if (m.xlevel) d.xlevel = *m.xlevel;
    if (m.xlevel2) d.xlevel2 = *m.xlevel2;
    if (m.model_id) {
      if (m.model_id->size() > kMaxModelId)
        return at(m.model_id_where, "model-id is " + std::to_string(m.model_id->size()) + " characters; CPUID holds at most 48");
      d.model_id = *m.model_id;
    }
    if (m.cache) {
      auto info = cache_info(*m.cache);
      if (!info) return info.error();
      r.cache_name = m.cache->name;
      d.cache = *info;
    }
    if (m.features) {
      d.features = FeatureSet();
      for (const auto& n : *m.features) {
        auto id = feature_id(n);
        if (!id) return id.error();
        d.features.add(*id);
      }
    }
    for (const auto& n : m.remove) {
      auto id = feature_id(n);
      if (!id) return id.error();
      if (!d.features.has(*id)) return at(n.where, "remove: '" + n.name + "' is not in base model '" + m.base + "'");
      d.features.remove(*id);
    }
    for (const auto& n : m.add) {
      auto id = feature_id(n);
      if (!id) return id.error();
      d.features.add(*id);
    }
    return ok_status();
  }

  // One property of a version applied to a definition (QEMU's PropValue semantics).
  static Status apply_prop(const RawProp& p, CpuDefinition& d, ModelEntry& e) {
    auto num = [&](unsigned long long max) -> Result<uint64_t> {
      size_t used = 0;
      unsigned long long v = 0;
      try { v = std::stoull(p.value, &used, 0); } catch (const std::exception&) { used = 0; }
      if (used == 0 || used != p.value.size() || v > max)
        return at(p.where, "property '" + p.key + "' needs a number <= " + std::to_string(max) + ", got '" + p.value + "'");
      return uint64_t(v);
    };
    const std::string& k = p.key;
    if (k == "model-id") {
      if (p.value.size() > kMaxModelId)
        return at(p.where, "model-id is " + std::to_string(p.value.size()) + " characters; CPUID holds at most 48");
      d.model_id = p.value;
      return ok_status();
    }
    if (k == "vendor") { d.vendor = p.value; return ok_status(); }
    struct NumProp { const char* key; unsigned long long max; };
    static constexpr NumProp kNum[] = {{"family", 0xff + 0xf}, {"model", 0xff}, {"stepping", 0xf},
                                       {"level", 0xffffffff}, {"xlevel", 0xffffffff}, {"xlevel2", 0xffffffff}};
    for (const auto& np : kNum) {
      if (k != np.key) continue;
      auto v = num(np.max);
      if (!v) return v.error();
      if (k == "family") d.family = unsigned(*v);
      else if (k == "model") d.model_number = unsigned(*v);
      else if (k == "stepping") d.stepping = unsigned(*v);
      else if (k == "level") d.level = uint32_t(*v);
      else if (k == "xlevel") d.xlevel = uint32_t(*v);
      else d.xlevel2 = uint32_t(*v);
      return ok_status();
    }
    // VMX capability MSR bits are not modelled (see tests/models/golden/qemu72-differences.md).
    if (k.rfind("vmx-", 0) == 0) return ok_status();
    if (p.value != "on" && p.value != "off") {
      // Non-boolean QEMU properties we carry but do not interpret (avx10-version=1).
      e.extra_props.push_back({k, p.value});
      return ok_status();
    }
    auto id = find_feature(k);
    if (!id) return at(p.where, unknown_feature_message(k));
    d.features.set(*id, p.value == "on");
    return ok_status();
  }

  Status expand_versions(size_t i, std::vector<ModelEntry>& out) {
    const RawModel& m = raw_[i];
    const Resolved& r = resolved_[i];
    ModelEntry base_entry;
    base_entry.base_name = m.name;
    base_entry.kind = m.kind;
    base_entry.vendor_neutral = m.vendor_neutral || m.kind != ModelEntry::Kind::kModel;
    base_entry.deprecated = m.deprecated;
    base_entry.deprecation_note = m.deprecation_note;
    base_entry.generation = m.generation;
    base_entry.signatures = m.signatures;
    for (auto& s : base_entry.signatures)
      if (s.vendor.empty()) s.vendor = r.def.vendor;
    base_entry.definition = r.def;
    base_entry.cache_name = r.cache_name;
    base_entry.parent = m.base;
    base_entry.source = m.where.str();
    // QEMU's x86_cpu_load_model sets CPUID.01H:ECX.hypervisor for every built-in model.
    if (m.kind == ModelEntry::Kind::kModel)
      if (auto hv = find_feature("hypervisor")) base_entry.definition.features.add(*hv);
    if (m.kind != ModelEntry::Kind::kModel || m.unversioned) {
      if (!m.versions.empty()) return at(m.versions.front().where, "'" + m.name + "' is not a versioned model");
      base_entry.name = m.name;
      base_entry.definition.model = m.name;
      base_entry.is_default_version = true;
      out.push_back(std::move(base_entry));
      return ok_status();
    }
    std::vector<detail::RawVersion> versions = m.versions;
    if (versions.empty()) versions.push_back({1, "", "", {}, std::nullopt, m.where});
    CpuDefinition def = base_entry.definition;
    std::string cache_name = r.cache_name;
    for (size_t v = 0; v < versions.size(); ++v) {
      const auto& rv = versions[v];
      if (rv.version != v + 1)
        return at(rv.where, "model '" + m.name + "': version " + std::to_string(rv.version) + " where " +
                                std::to_string(v + 1) + " was expected (versions count 1, 2, 3... in order)");
      ModelEntry e = base_entry;
      for (const auto& p : rv.props) {
        if (auto s = apply_prop(p, def, e); !s) return s.error();
        e.changes.push_back({p.key, p.value});
      }
      if (rv.cache) {
        auto info = cache_info(*rv.cache);
        if (!info) return info.error();
        cache_name = rv.cache->name;
        def.cache = *info;
      }
      e.version = rv.version;
      e.name = m.name + "-v" + std::to_string(rv.version);
      e.alias = rv.alias;
      e.note = rv.note;
      e.definition = def;
      e.definition.model = e.name;
      e.cache_name = cache_name;
      e.source = rv.where.str();
      e.is_default_version = rv.version == kDefaultModelVersion;
      // Extra props are cumulative like every other prop.
      if (!out.empty() && v > 0)
        for (const auto& xp : out.back().extra_props)
          if (std::none_of(e.extra_props.begin(), e.extra_props.end(), [&](const VersionProp& p) { return p.key == xp.key; }))
            e.extra_props.push_back(xp);
      out.push_back(std::move(e));
    }
    return ok_status();
  }

  Status check_names(const std::vector<ModelEntry>& out) {
    std::map<std::string, std::string> seen;  // lower-case name -> where
    auto claim = [&](const std::string& name, const std::string& where) -> Status {
      auto [it, fresh] = seen.emplace(lower(name), where);
      if (!fresh) return input_error(where + ": duplicate model or alias name '" + name + "' (also at " + it->second + ")");
      return ok_status();
    };
    std::set<std::string> bases;
    for (const auto& e : out) {
      if (auto s = claim(e.name, e.source); !s) return s;
      if (!e.alias.empty())
        if (auto s = claim(e.alias, e.source); !s) return s;
      if (e.kind == ModelEntry::Kind::kModel && e.version && bases.insert(e.base_name).second)
        if (auto s = claim(e.base_name, e.source); !s) return s;
    }
    return ok_status();
  }

  // A model's `cache:`: its inline levels, else the named entry of a `caches:` table (any file).
  Result<CacheInfo> cache_info(const detail::RawCache& rc) const {
    if (rc.info) return *rc.info;
    if (auto it = caches_.find(rc.name); it != caches_.end()) return it->second.info;
    std::string best;
    size_t best_d = 4;
    for (const auto& [n, def] : caches_) {
      (void)def;
      if (size_t d = distance(n, rc.name); d < best_d) { best_d = d; best = n; }
    }
    return at(rc.where, "unknown cache info '" + rc.name + "'" + (best.empty() ? "" : " (did you mean '" + best + "'?)") +
                            "; name one defined under 'caches:' (data/models/caches.yaml) or give {name, levels: [...]}");
  }

  std::string suggest(const std::string& name) const {
    std::string best;
    size_t best_d = 3;
    for (const auto& [n, i] : index_) {
      (void)i;
      size_t d = lower(n) == lower(name) ? 0 : distance(lower(n), lower(name));
      if (d < best_d) { best_d = d; best = n; }
    }
    return best.empty() ? "" : " (did you mean '" + best + "'?)";
  }

 public:
  static size_t distance(const std::string& a, const std::string& b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= b.size(); ++j)
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      std::swap(prev, cur);
    }
    return prev[b.size()];
  }

 private:
  std::vector<RawModel> raw_;
  std::map<std::string, size_t> index_;
  std::map<std::string, detail::RawCacheDef> caches_;  // every file's `caches:` entries
  std::vector<Resolved> resolved_;
};

Result<std::vector<std::string>> yaml_files(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return input_error(dir + ": not a directory of model files");
  std::vector<std::string> files;
  for (const auto& ent : fs::directory_iterator(dir, ec))
    if (ent.path().extension() == ".yaml" || ent.path().extension() == ".yml") files.push_back(ent.path().string());
  if (ec) return input_error(dir + ": " + ec.message());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

namespace {

std::vector<std::string_view>& compiled_blobs() {
  static std::vector<std::string_view> blobs;
  return blobs;
}

bool compiled_catalog_disabled() {
  const char* env = std::getenv("CPUMODEL_COMPILED_CATALOG");
  return env && std::string_view(env) == "off";
}

}  // namespace

void Catalog::register_compiled(std::string_view blob) { compiled_blobs().push_back(blob); }

struct Catalog::Lazy {
  detail::CompiledCatalog compiled;
  std::mutex mu;
  std::vector<std::unique_ptr<ModelEntry>> one;  // decoded by get(), entry by entry
  std::vector<ModelEntry> all;                   // decoded by everything(), all at once
  bool all_decoded = false;

  // The blob's checksum was verified when it was opened, so an entry fails to decode only if the
  // codec itself is wrong (compiled_test decodes every entry against the YAML); it is then its
  // names alone.
  ModelEntry decode(size_t i) const {
    if (auto e = compiled.entry(i)) return std::move(*e);
    const detail::CompiledName& n = compiled.name(i);
    ModelEntry e;
    e.name = n.name;
    e.alias = n.alias;
    e.base_name = n.base_name;
    e.kind = n.kind;
    e.version = n.version;
    e.is_default_version = n.is_default_version;
    return e;
  }
  // The same object for the same entry every time: decoded on its own, or entries()'s element
  // when everything was decoded first.
  const ModelEntry* get(size_t i) {
    std::lock_guard lock(mu);
    if (one[i]) return one[i].get();
    if (all_decoded) return &all[i];
    one[i] = std::make_unique<ModelEntry>(decode(i));
    return one[i].get();
  }
  const std::vector<ModelEntry>& everything() {
    std::lock_guard lock(mu);
    if (!all_decoded) {
      all.reserve(compiled.size());
      for (size_t i = 0; i < compiled.size(); ++i) all.push_back(one[i] ? *one[i] : decode(i));
      all_decoded = true;
    }
    return all;
  }
};

const std::vector<ModelEntry>& Catalog::entries() const { return lazy_ ? lazy_->everything() : entries_; }

Result<std::string> Catalog::compile() const {
  return detail::encode_compiled_catalog(entries(), files_, files_fingerprint_);
}

size_t Catalog::entry_count() const { return lazy_ ? lazy_->compiled.size() : entries_.size(); }

detail::CompiledName Catalog::names_at(size_t i) const {
  if (lazy_) return lazy_->compiled.name(i);
  const ModelEntry& e = entries_[i];
  return {e.name, e.alias, e.base_name, e.kind, e.version, e.is_default_version};
}

void Catalog::build_index() {
  names_.clear();
  for (size_t i = 0; i < entry_count(); ++i) {
    detail::CompiledName e = names_at(i);
    names_.push_back({lower(e.name), i});
    if (!e.alias.empty()) names_.push_back({lower(e.alias), i});
    if (e.kind == ModelEntry::Kind::kModel && e.version && e.is_default_version)
      names_.push_back({lower(e.base_name), i});
  }
  std::sort(names_.begin(), names_.end());
}

Result<Catalog> Catalog::load(const std::vector<std::string>& dirs) {
  Catalog cat;
  for (const auto& dir : dirs) {
    auto files = yaml_files(dir);
    if (!files) return files.error();
    if (files->empty()) return input_error(dir + ": no *.yaml model files");
    cat.files_.insert(cat.files_.end(), files->begin(), files->end());
  }
  // Reading the files and hashing them costs ~0.1 ms; parsing them as YAML, 10-30 ms. A file that
  // cannot be read is reported after the parse errors of the files before it, as it always was.
  std::vector<std::string> contents;
  std::optional<Error> read_error;
  for (const auto& f : cat.files_) {
    auto c = read_file(f);
    if (!c) {
      read_error = c.error();
      break;
    }
    contents.push_back(std::move(*c));
  }
  if (!read_error) {
    cat.files_fingerprint_ = detail::files_fingerprint(cat.files_, contents);
    if (!compiled_catalog_disabled()) {
      for (std::string_view blob : compiled_blobs()) {
        if (auto compiled = detail::CompiledCatalog::open(blob, cat.files_, cat.files_fingerprint_)) {
          cat.lazy_ = std::make_shared<Lazy>();
          cat.lazy_->one.resize(compiled->size());
          cat.lazy_->compiled = std::move(*compiled);
          cat.from_compiled_ = true;
          cat.build_index();
          return cat;
        }
      }
    }
  }
  Builder b;
  for (size_t i = 0; i < contents.size(); ++i)
    if (auto s = b.add_file(cat.files_[i], contents[i]); !s) return s.error();
  if (read_error) return *read_error;
  auto entries = b.build();
  if (!entries) return entries.error();
  cat.entries_ = std::move(*entries);
  cat.build_index();
  return cat;
}

Result<Catalog> Catalog::load_default(const std::vector<std::string>& extra_dirs) {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("CPUMODEL_DATA_DIR"); env && *env) candidates.push_back(env);
  // An installed program (PREFIX/bin/x) uses its own PREFIX/share/cpumodel before the source tree
  // it was built from: the .deb and `cmake --install` are relocatable, and a build tree left on
  // the machine must not shadow the installed catalog. In a build tree that path does not exist.
  std::error_code exe_ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", exe_ec);
  if (!exe_ec && exe.has_parent_path() && exe.parent_path().filename() == "bin")
    candidates.push_back((exe.parent_path().parent_path() / "share" / "cpumodel").string());
#ifdef CPUMODEL_SOURCE_DATA_DIR
  candidates.push_back(CPUMODEL_SOURCE_DATA_DIR);
#endif
#ifdef CPUMODEL_INSTALL_DATA_DIR
  candidates.push_back(CPUMODEL_INSTALL_DATA_DIR);
#endif
  std::error_code ec;
  for (const auto& c : candidates) {
    std::string dir = c + "/models";
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<std::string> dirs{dir};
    dirs.insert(dirs.end(), extra_dirs.begin(), extra_dirs.end());
    return load(dirs);
  }
  std::string tried;
  for (const auto& c : candidates) tried += " " + c + "/models";
  return input_error("no CPU model catalog found (tried:" + tried + "); set CPUMODEL_DATA_DIR to the directory holding models/");
}

const ModelEntry* Catalog::find(std::string_view name) const {
  std::string key = lower(name);
  auto it = std::lower_bound(names_.begin(), names_.end(), std::make_pair(key, size_t(0)));
  if (it == names_.end() || it->first != key) return nullptr;
  return entry_at(it->second);
}

std::string Catalog::unknown_model_message(std::string_view name) const {
  std::string msg = "unknown CPU model '" + std::string(name) + "'";
  std::string best;
  size_t best_d = std::max<size_t>(2, name.size() / 4) + 1;
  for (const auto& [n, i] : names_) {
    size_t d = Builder::distance(n, lower(name));
    if (d < best_d) {
      best_d = d;
      detail::CompiledName e = names_at(i);
      best = lower(e.name) == n ? e.name : lower(e.alias) == n ? e.alias : e.base_name;
    }
  }
  if (!best.empty()) msg += " (did you mean '" + best + "'?)";
  return msg + "; 'cpumodel list' shows every model";
}

std::vector<std::pair<std::string, std::string>> Catalog::unversioned_names() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& e : entries())
    if (e.kind == ModelEntry::Kind::kModel && e.version && e.is_default_version) out.push_back({e.base_name, e.name});
  return out;
}

// find(), versions_of() and recognise() return the same object for the same entry (Lazy::get).
const ModelEntry* Catalog::entry_at(size_t i) const { return lazy_ ? lazy_->get(i) : &entries_[i]; }

std::vector<const ModelEntry*> Catalog::versions_of(std::string_view name) const {
  std::vector<const ModelEntry*> out;
  const ModelEntry* e = find(name);
  if (!e) return out;
  for (size_t i = 0; i < entry_count(); ++i)
    if (names_at(i).base_name == e->base_name) out.push_back(entry_at(i));
  return out;
}

const ModelEntry* Catalog::recognise(std::string_view vendor, unsigned family, unsigned model, unsigned stepping) const {
  const auto& all = entries();
  std::optional<size_t> best;
  for (size_t i = 0; i < all.size(); ++i) {
    const ModelEntry& e = all[i];
    if (!e.is_default_version) continue;
    for (const auto& s : e.signatures)
      if (s.matches(vendor, family, model, stepping) && (!best || e.generation > all[*best].generation)) best = i;
  }
  return best ? entry_at(*best) : nullptr;
}

}  // namespace cpumodel
