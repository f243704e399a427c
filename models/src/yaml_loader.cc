// YAML adapter: data/models/*.yaml -> RawModel. yaml-cpp stays private to this file; its
// exceptions are caught here and turned into file:line errors.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>

#include "cpumodel/cpuid/profile.h"
#include "raw_model.h"

namespace cpumodel::detail {
namespace {

struct Ctx {
  std::string file;
  Where at(const YAML::Node& n) const { return {file, static_cast<unsigned>(n.Mark().line + 1)}; }
  Error err(const YAML::Node& n, const std::string& what) const { return input_error(at(n).str() + ": " + what); }
};

// Thrown inside this file only, caught in parse_model_text.
struct LoadError {
  Error error;
};

[[noreturn]] void fail(const Ctx& c, const YAML::Node& n, const std::string& what) { throw LoadError{c.err(n, what)}; }

std::string scalar(const Ctx& c, const YAML::Node& n, const char* what) {
  if (!n.IsScalar()) fail(c, n, std::string("'") + what + "' must be a single value");
  return n.Scalar();
}

uint64_t number(const Ctx& c, const YAML::Node& n, const char* what) {
  std::string s = scalar(c, n, what);
  size_t used = 0;
  uint64_t v = 0;
  try {
    v = std::stoull(s, &used, 0);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != s.size()) fail(c, n, std::string("'") + what + "' must be a number, got '" + s + "'");
  return v;
}

bool boolean(const Ctx& c, const YAML::Node& n, const char* what) {
  std::string s = scalar(c, n, what);
  if (s == "true" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "no" || s == "off") return false;
  fail(c, n, std::string("'") + what + "' must be true or false, got '" + s + "'");
}

std::vector<RawName> names(const Ctx& c, const YAML::Node& n, const char* what) {
  if (!n.IsSequence()) fail(c, n, std::string("'") + what + "' must be a list of feature names");
  std::vector<RawName> out;
  for (const auto& item : n) out.push_back({scalar(c, item, what), c.at(item)});
  return out;
}

// "0x55" or "0x3c-0x3f" -> [min, max]
std::pair<unsigned, unsigned> range(const Ctx& c, const YAML::Node& n, const char* what) {
  std::string s = scalar(c, n, what);
  size_t dash = s.find('-');
  auto one = [&](const std::string& t) -> unsigned {
    size_t used = 0;
    unsigned long v = 0;
    try {
      v = std::stoul(t, &used, 0);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != t.size()) fail(c, n, std::string("bad ") + what + " '" + s + "' (expected N or N-M)");
    return static_cast<unsigned>(v);
  };
  if (dash == std::string::npos) {
    unsigned v = one(s);
    return {v, v};
  }
  auto r = std::make_pair(one(s.substr(0, dash)), one(s.substr(dash + 1)));
  if (r.first > r.second) fail(c, n, std::string("empty ") + what + " range '" + s + "'");
  return r;
}

std::vector<Signature> signatures(const Ctx& c, const YAML::Node& n, const std::string& vendor) {
  if (!n.IsSequence()) fail(c, n, "'signatures' must be a list of {family, model[, stepping][, vendor]}");
  std::vector<Signature> out;
  for (const auto& s : n) {
    if (!s.IsMap() || !s["family"] || !s["model"]) fail(c, s, "a signature needs 'family' and 'model'");
    for (const auto& kv : s) {
      std::string k = kv.first.Scalar();
      if (k != "family" && k != "model" && k != "stepping" && k != "vendor")
        fail(c, kv.first, "unknown signature key '" + k + "'");
    }
    Signature base;
    base.vendor = s["vendor"] ? scalar(c, s["vendor"], "vendor") : vendor;
    base.family = static_cast<unsigned>(number(c, s["family"], "family"));
    if (s["stepping"]) std::tie(base.stepping_min, base.stepping_max) = range(c, s["stepping"], "stepping");
    YAML::Node models = s["model"];
    std::vector<YAML::Node> items;
    if (models.IsSequence())
      for (const auto& m : models) items.push_back(m);
    else
      items.push_back(models);
    for (const auto& m : items) {
      Signature sig = base;
      std::tie(sig.model_min, sig.model_max) = range(c, m, "model");
      out.push_back(sig);
    }
  }
  return out;
}

CacheLevel cache_level(const Ctx& c, const YAML::Node& n) {
  CacheLevel l;
  static const std::set<std::string> kKeys = {"type", "level", "size-kib", "line-size", "associativity",
                                              "partitions", "sets", "lines-per-tag", "self-init",
                                              "no-invd-sharing", "inclusive", "complex-indexing", "shared"};
  for (const auto& kv : n) {
    std::string k = kv.first.Scalar();
    if (!kKeys.count(k)) fail(c, kv.first, "unknown cache key '" + k + "'");
  }
  std::string type = n["type"] ? scalar(c, n["type"], "type") : "unified";
  if (type == "data") l.type = CacheLevel::Type::kData;
  else if (type == "instruction") l.type = CacheLevel::Type::kInstruction;
  else if (type == "unified") l.type = CacheLevel::Type::kUnified;
  else fail(c, n["type"], "cache type must be data, instruction or unified");
  auto num = [&](const char* k, unsigned& dst) { if (n[k]) dst = static_cast<unsigned>(number(c, n[k], k)); };
  auto flag = [&](const char* k, bool& dst) { if (n[k]) dst = boolean(c, n[k], k); };
  num("level", l.level); num("size-kib", l.size_kib); num("line-size", l.line_size);
  num("associativity", l.associativity); num("partitions", l.partitions); num("sets", l.sets);
  num("lines-per-tag", l.lines_per_tag);
  flag("self-init", l.self_init); flag("no-invd-sharing", l.no_invd_sharing);
  flag("inclusive", l.inclusive); flag("complex-indexing", l.complex_indexing);
  if (n["shared"]) {
    std::string s = scalar(c, n["shared"], "shared");
    if (s == "core") l.shared = CacheLevel::Shared::kCore;
    else if (s == "die") l.shared = CacheLevel::Shared::kDie;
    else if (s == "socket") l.shared = CacheLevel::Shared::kSocket;
    else fail(c, n["shared"], "cache 'shared' must be core, die or socket");
  }
  uint64_t expect = uint64_t(l.line_size) * l.associativity * l.partitions * l.sets;
  if (l.sets && expect != uint64_t(l.size_kib) * 1024)
    fail(c, n, "cache size " + std::to_string(l.size_kib) + " KiB != line-size x associativity x partitions x sets");
  return l;
}

CacheInfo cache_levels(const Ctx& c, const YAML::Node& n) {
  if (!n.IsSequence() || n.size() == 0) fail(c, n, "cache levels must be a non-empty list of {type, level, size-kib, ...}");
  CacheInfo info;
  for (const auto& l : n) info.levels.push_back(cache_level(c, l));
  return info;
}

// `cache: NAME` (resolved against the `caches:` tables by the catalog) or {name, levels: [...]}.
RawCache cache(const Ctx& c, const YAML::Node& n) {
  RawCache rc;
  rc.where = c.at(n);
  if (n.IsScalar()) {
    rc.name = n.Scalar();
    return rc;
  }
  if (!n.IsMap() || !n["name"]) fail(c, n, "'cache' is a cache-info name (see caches.yaml) or {name, levels: [...]}");
  rc.name = scalar(c, n["name"], "name");
  if (n["levels"]) rc.info = cache_levels(c, n["levels"]);
  return rc;
}

// Top-level `caches:` map: QEMU CPUCaches name -> list of levels.
std::vector<RawCacheDef> cache_table(const Ctx& c, const YAML::Node& n) {
  if (!n.IsMap()) fail(c, n, "'caches' must be a map of cache-info name: [levels]");
  std::vector<RawCacheDef> out;
  for (const auto& kv : n) {
    RawCacheDef d;
    d.name = scalar(c, kv.first, "cache name");
    d.where = c.at(kv.first);
    d.info = cache_levels(c, kv.second);
    out.push_back(std::move(d));
  }
  return out;
}

RawVersion version(const Ctx& c, const YAML::Node& n) {
  if (!n.IsMap() || !n["version"]) fail(c, n, "a version needs 'version: N'");
  RawVersion v;
  v.where = c.at(n);
  for (const auto& kv : n) {
    std::string k = kv.first.Scalar();
    const YAML::Node& val = kv.second;
    if (k == "version") v.version = static_cast<unsigned>(number(c, val, "version"));
    else if (k == "alias") v.alias = scalar(c, val, "alias");
    else if (k == "note") v.note = scalar(c, val, "note");
    else if (k == "cache") v.cache = cache(c, val);
    else if (k == "props") {
      if (!val.IsMap()) fail(c, val, "'props' must be a map of property: value");
      for (const auto& p : val) v.props.push_back({p.first.Scalar(), scalar(c, p.second, "props"), c.at(p.first)});
    } else {
      fail(c, kv.first, "unknown version key '" + k + "' (expected version, alias, note, props, cache)");
    }
  }
  return v;
}

void model_field(const Ctx& c, RawModel& m, const std::string& k, const YAML::Node& key, const YAML::Node& val) {
  if (k == "name") m.name = scalar(c, val, "name");
  else if (k == "base") { m.base = scalar(c, val, "base"); m.base_where = c.at(val); }
  else if (k == "kind") {
    std::string s = scalar(c, val, "kind");
    if (s == "model") m.kind = ModelEntry::Kind::kModel;
    else if (s == "base") m.kind = ModelEntry::Kind::kBase;
    else if (s == "host") m.kind = ModelEntry::Kind::kHost;
    else if (s == "max") m.kind = ModelEntry::Kind::kMax;
    else fail(c, val, "kind must be model, base, host or max");
  } else if (k == "vendor") m.vendor = scalar(c, val, "vendor");
  else if (k == "model-id") { m.model_id = scalar(c, val, "model-id"); m.model_id_where = c.at(val); }
  else if (k == "family") m.family = static_cast<unsigned>(number(c, val, "family"));
  else if (k == "model") m.model = static_cast<unsigned>(number(c, val, "model"));
  else if (k == "stepping") m.stepping = static_cast<unsigned>(number(c, val, "stepping"));
  else if (k == "level") m.level = static_cast<uint32_t>(number(c, val, "level"));
  else if (k == "xlevel") m.xlevel = static_cast<uint32_t>(number(c, val, "xlevel"));
  else if (k == "xlevel2") m.xlevel2 = static_cast<uint32_t>(number(c, val, "xlevel2"));
  else if (k == "features") m.features = names(c, val, "features");
  else if (k == "add") m.add = names(c, val, "add");
  else if (k == "remove") m.remove = names(c, val, "remove");
  else if (k == "vendor-neutral") m.vendor_neutral = boolean(c, val, "vendor-neutral");
  else if (k == "unversioned") m.unversioned = boolean(c, val, "unversioned");
  else if (k == "generation") m.generation = static_cast<unsigned>(number(c, val, "generation"));
  else if (k == "cache") m.cache = cache(c, val);
  else if (k == "deprecated") {
    std::string s = scalar(c, val, "deprecated");
    if (s == "false" || s == "no") m.deprecated = false;
    else if (s == "true" || s == "yes") m.deprecated = true;
    else { m.deprecated = true; m.deprecation_note = s; }
  } else if (k == "versions") {
    if (!val.IsSequence()) fail(c, val, "'versions' must be a list");
    for (const auto& v : val) m.versions.push_back(version(c, v));
  } else if (k != "signatures") {
    fail(c, key, "unknown model key '" + k + "'");
  }
}

RawModel model(const Ctx& c, const YAML::Node& n) {
  if (!n.IsMap() || !n["name"]) fail(c, n, "a model needs 'name'");
  RawModel m;
  m.where = c.at(n);
  for (const auto& kv : n) model_field(c, m, kv.first.Scalar(), kv.first, kv.second);
  if (n["signatures"]) m.signatures = signatures(c, n["signatures"], m.vendor.value_or(""));
  return m;
}

}  // namespace

Result<RawFile> parse_model_text(const std::string& text, const std::string& path) {
  Ctx c{path};
  try {
    YAML::Node root = YAML::Load(text);
    bool has_models = root.IsMap() && root["models"], has_caches = root.IsMap() && root["caches"];
    if (!has_models && !has_caches)
      return input_error(path + ":1: expected a top-level 'models:' list (or a 'caches:' map)");
    if (has_models && !root["models"].IsSequence()) return input_error(path + ":1: 'models' must be a list");
    RawFile out;
    if (has_caches) out.caches = cache_table(c, root["caches"]);
    if (has_models)
      for (const auto& n : root["models"]) out.models.push_back(model(c, n));
    // Signatures inherit the model's vendor when the file sets it after 'signatures'.
    for (auto& m : out.models)
      for (auto& s : m.signatures)
        if (s.vendor.empty() && m.vendor) s.vendor = *m.vendor;
    return out;
  } catch (const LoadError& e) {
    return e.error;
  } catch (const YAML::Exception& e) {
    return input_error(path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

}  // namespace cpumodel::detail
