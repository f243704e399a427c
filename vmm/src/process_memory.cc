#include "cpumodel/vmm/process_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace cpumodel::vmm {
namespace {

struct Mapping {
  unsigned long long start = 0, end = 0;
  std::string perms, path;
  unsigned long long anonymous_kib = 0;  // resident pages written since mapped (private copies)
  unsigned long long swap_kib = 0;       // private copies swapped out
};

std::vector<Mapping> own_file_mappings(const std::string& exe) {
  std::vector<Mapping> out;
  FILE* f = std::fopen("/proc/self/smaps", "re");
  if (!f) return out;
  char line[PATH_MAX + 128];
  Mapping* cur = nullptr;
  while (std::fgets(line, sizeof line, f)) {
    unsigned long long start = 0, end = 0, kib = 0;
    char perms[8] = {};
    int path_at = 0;
    // A mapping's first line: "start-end perms offset dev inode   path"; then "Key: value kB" lines.
    if (std::sscanf(line, "%llx-%llx %7s %*s %*s %*s %n", &start, &end, perms, &path_at) >= 3 && path_at > 0) {
      std::string path = line + path_at;
      while (!path.empty() && (path.back() == '\n' || path.back() == ' ')) path.pop_back();
      cur = nullptr;
      if (path == exe) cur = &out.emplace_back(Mapping{start, end, perms, path, 0});
    } else if (cur && std::sscanf(line, "Anonymous: %llu kB", &kib) == 1) {
      cur->anonymous_kib = kib;
    } else if (cur && std::sscanf(line, "Swap: %llu kB", &kib) == 1) {
      cur->swap_kib = kib;
    }
  }
  std::fclose(f);
  return out;
}

}  // namespace

uint64_t release_startup_code() {
  char exe[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return 0;
  exe[n] = 0;
  uint64_t released = 0;
  for (const Mapping& m : own_file_mappings(exe)) {
    // Code and read-only data none of whose pages is a private copy, resident or swapped out:
    // RELRO data that start-up relocated is one (kept), and so is code a debugger or uprobe wrote
    // a breakpoint into.
    bool readonly = m.perms == "r-xp" || m.perms == "r--p";
    if (!readonly || m.anonymous_kib != 0 || m.swap_kib != 0) continue;
    if (::madvise(reinterpret_cast<void*>(m.start), m.end - m.start, MADV_DONTNEED) == 0) released += m.end - m.start;
  }
  return released;
}

}  // namespace cpumodel::vmm
