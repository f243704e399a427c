// Shared by the fuzz targets: a property check that turns a violated property into a finding
// (libFuzzer saves the input and reports it like a crash).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace cpumodel::fuzz {

// Aborts with a message when `ok` is false. Used for parse(print(x)) == x and invariants.
inline void check(bool ok, const char* what, const std::string& detail = {}) {
  if (ok) return;
  std::fprintf(stderr, "fuzz property violated: %s\n%s\n", what, detail.c_str());
  std::abort();
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace cpumodel::fuzz
