// The newest readable /boot/vmlinuz-* (Debian's linux-image-amd64), or "" when there is none.
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <string>

namespace cpumodel::testing {

inline std::string debian_kernel() {
  DIR* d = ::opendir("/boot");
  if (!d) return "";
  std::string best;
  while (dirent* e = ::readdir(d))
    if (std::string n = e->d_name; n.rfind("vmlinuz-", 0) == 0 && n > best) best = n;
  ::closedir(d);
  return best.empty() || ::access(("/boot/" + best).c_str(), R_OK) != 0 ? "" : "/boot/" + best;
}

}  // namespace cpumodel::testing
