// Internal: the catalog as written in the YAML files, before validation and resolution.
// Every item keeps the file:line it came from so errors can name it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cpumodel/cpuid/cpu_definition.h"
#include "cpumodel/cpuid/result.h"
#include "cpumodel/models/catalog.h"

namespace cpumodel::detail {

struct Where {
  std::string file;
  unsigned line = 0;  // 1-based
  std::string str() const { return file + ":" + std::to_string(line); }
};

struct RawName {
  std::string name;
  Where where;
};

struct RawProp {
  std::string key;
  std::string value;
  Where where;
};

struct RawCache {
  std::string name;
  std::optional<CacheInfo> info;  // numbers, when the file gives them (else looked up by name)
  Where where;
};

// One entry of a file's top-level `caches:` map (QEMU's named CPUCaches).
struct RawCacheDef {
  std::string name;
  CacheInfo info;
  Where where;
};

struct RawVersion {
  unsigned version = 0;
  std::string alias, note;
  std::vector<RawProp> props;
  std::optional<RawCache> cache;
  Where where;
};

struct RawModel {
  std::string name;
  Where where;
  std::string base;
  Where base_where;
  ModelEntry::Kind kind = ModelEntry::Kind::kModel;
  std::optional<std::string> vendor, model_id;
  Where model_id_where;
  std::optional<unsigned> family, model, stepping;
  std::optional<uint32_t> level, xlevel, xlevel2;
  std::optional<std::vector<RawName>> features;
  std::vector<RawName> add, remove;
  bool vendor_neutral = false;
  bool unversioned = false;  // one entry named like the model (x86-64-v3), no -vN
  bool deprecated = false;
  std::string deprecation_note;
  unsigned generation = 0;
  std::vector<Signature> signatures;
  std::optional<RawCache> cache;
  std::vector<RawVersion> versions;
};

// What one YAML file defines: models, named cache infos, or both.
struct RawFile {
  std::vector<RawModel> models;
  std::vector<RawCacheDef> caches;
};

// Parses one YAML file's text (models: [...] and/or caches: {name: [levels]}). Errors name path:line.
Result<RawFile> parse_model_text(const std::string& text, const std::string& path);

}  // namespace cpumodel::detail
