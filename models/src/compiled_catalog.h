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
// The entries, with `paths` in their `source` fields; nullopt when the blob is not for these
// files (fingerprints, names) or this dictionary, or is damaged.
std::optional<std::vector<ModelEntry>> decode_compiled_catalog(std::string_view blob,
                                                               const std::vector<std::string>& paths,
                                                               uint64_t files_fp);

}  // namespace cpumodel::detail
