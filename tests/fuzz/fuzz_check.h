// Shared by the fuzz targets: a property check that turns a violated property into a finding
// (libFuzzer saves the input and reports it like a crash).
#pragma once

#include <unistd.h>

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

// Error messages are one line (CLI.md: one `cpumodel: error: ...` line). Many messages quote the
// offending input, newlines included, so every target finds that within seconds; it is covered
// once, at the CLI, by tests/bad_inputs (the *_newline_* rows). CPUMODEL_FUZZ_STRICT=1 checks it here.
inline void check_one_line(const std::string& message) {
  static const bool strict = std::getenv("CPUMODEL_FUZZ_STRICT") != nullptr;
  check(!message.empty(), "an error has a message");
  if (strict) check(message.find_first_of("\n\r") == std::string::npos, "an error is one line", message);
}

// A private temporary directory for targets that must hand a path to the code under test, and
// the one file in it they use; both removed at exit. Plain char buffers: no destructor can run
// before the exit handler that needs them.
inline const char* scratch_file(const char* file_name) {
  static char dir[4096], file[4096 + 256];
  if (!dir[0]) {
    const char* base = std::getenv("TMPDIR");
    std::snprintf(dir, sizeof dir, "%s/cpumodel-fuzz-XXXXXX", base && *base ? base : "/tmp");
    if (!::mkdtemp(dir)) std::abort();
    std::snprintf(file, sizeof file, "%s/%s", dir, file_name);
    std::atexit([] {
      ::unlink(file);
      ::rmdir(dir);
    });
  }
  return file;
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace cpumodel::fuzz
