// The output of a rig run (tests/e2e/rig/init): each command's lines between "@@BEGIN N COMMAND"
// and "@@END N EXITCODE". Shared by the rig tests, which each read their own marker lines.
#pragma once

#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

namespace cpumodel::testing {

struct RigSection {
  std::string command;
  int exit_code = -1;              // -1: no @@END (the rig was cut off)
  std::vector<std::string> lines;  // without the trailing CRs each tty adds
  std::string text;                // the lines, joined
};

inline std::vector<RigSection> split_rig_output(const std::string& out) {
  std::vector<RigSection> sections;
  std::istringstream in(out);
  RigSection* cur = nullptr;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("@@BEGIN ", 0) == 0) {
      cur = &sections.emplace_back();
      cur->command = line.substr(line.find(' ', 8) + 1);
    } else if (cur && line.rfind("@@END ", 0) == 0) {
      cur->exit_code = std::atoi(line.substr(line.rfind(' ') + 1).c_str());
      cur = nullptr;
    } else if (cur) {
      cur->lines.push_back(line);
      cur->text += line + "\n";
    }
  }
  return sections;
}

}  // namespace cpumodel::testing
