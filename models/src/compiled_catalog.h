// The compiled catalog codec (see compiled_catalog.cc). Private to the models library.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cpumodel/models/catalog.h"

namespace cpumodel::detail {

// Changes when the feature dictionary (names, ids, dependencies) changes.
uint64_t dictionary_fingerprint();
// Of the model files' base names and contents, in load order (independent of where they are).
uint64_t files_fingerprint(const std::vector<std::string>& paths, const std::vector<std::string>& contents);

Result<std::string> encode_compiled_catalog(const std::vector<ModelEntry>& entries,
                                            const std::vector<std::string>& paths, uint64_t files_fp);

// What the catalog's name index needs of an entry, read from the blob's directory.
struct CompiledName {
  std::string_view name, alias, base_name;  // into the blob (or the entry's strings: Catalog::names_at)
  ModelEntry::Kind kind = ModelEntry::Kind::kModel;
  uint32_t version = 0;
  bool is_default_version = false;
};

// A compiled catalog opened without decoding its entries: the directory (each entry's names and
// where its bytes are), and each entry decoded when asked. `verify` looks up one model of ~250;
// decoding them all cost ~0.3 ms of its ~3 ms. The blob must outlive it.
class CompiledCatalog {
 public:
  // nullopt when the blob is not for these files (fingerprints, names) or this dictionary, or is
  // damaged (its directory, or the entries' checksum).
  static std::optional<CompiledCatalog> open(std::string_view blob, const std::vector<std::string>& paths,
                                             uint64_t files_fp);
  size_t size() const { return names_.size(); }
  const CompiledName& name(size_t i) const { return names_[i]; }
  // nullopt when its bytes do not decode (which, the checksum having matched, only a codec fault
  // can cause).
  std::optional<ModelEntry> entry(size_t i) const;

 private:
  std::string_view blob_;
  std::vector<std::string> paths_;
  std::vector<CompiledName> names_;
  std::vector<std::pair<size_t, size_t>> spans_;  // entry i's bytes: offset, length
};

}  // namespace cpumodel::detail
