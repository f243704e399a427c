// Profile bundles: many host profiles in one Protobuf file (migrate/proto/bundle.proto), and the
// PROFILE argument of baseline/migrate-check that accepts either a bundle or a single profile.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "cpumodel/cpuid/profile.h"
#include "cpumodel/cpuid/result.h"

namespace cpumodel {

// "CMBL" little-endian, the first field of every bundle (wire bytes 0D 43 4D 42 4C).
inline constexpr uint32_t kBundleMagic = 0x4C424D43;
inline constexpr uint32_t kBundleVersion = 1;

// True when `data` starts like a bundle (the magic field). Cheap: looks at 5 bytes.
bool is_bundle(std::string_view data);

// Serialises profiles into a bundle (bytes).
std::string encode_bundle(const std::vector<HostProfile>& hosts);
// Parses a bundle; `name` (the file) is used in messages. A truncated or corrupt bundle is an
// error that says so; each host's `source` becomes "name#host".
Result<std::vector<HostProfile>> decode_bundle(std::string_view data, const std::string& name);

// `cpumodel import --bundle OUT FILES...`: loads every file (any format, bundles included) and
// writes one bundle atomically. Returns how many hosts it holds. Duplicate host names are made
// unique ("name", "name-2", ...). `progress(done, total)` is called after each input file.
Result<size_t> import_bundle(const std::vector<std::string>& inputs, const std::string& out_path,
                             const std::function<void(size_t, size_t)>& progress = {});

// One PROFILE argument: a bundle (all its hosts) or any single-profile format (load_profile).
Result<std::vector<HostProfile>> load_profiles(const std::string& path);
// Many PROFILE arguments, concatenated in order.
Result<std::vector<HostProfile>> load_profiles(const std::vector<std::string>& paths);

}  // namespace cpumodel
