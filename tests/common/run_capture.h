// Runs a shell command and returns what it wrote on stdout (tests and benchmarks only).
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace cpumodel::testing {

// `status` gets the exit code, or -1 when the command did not exit normally.
inline std::string run_capture(const std::string& cmd, int* status = nullptr) {
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) {
    if (status) *status = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  int st = ::pclose(f);
  if (status) *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

}  // namespace cpumodel::testing
