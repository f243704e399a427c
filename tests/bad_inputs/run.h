// Runs the built cpumodel binary as a user would, capturing exit status, stdout and stderr, with
// a deadline (a hang is a finding too).
#pragma once

#include <string>
#include <vector>

namespace cpumodel::bad_inputs {

struct RunResult {
  bool exited = false;     // false: killed by a signal (or by the deadline)
  int exit_code = -1;      // when exited
  int signal = 0;          // when !exited
  bool timed_out = false;
  std::string out, err;
};

struct RunOptions {
  std::vector<std::string> env;  // extra NAME=value entries
  bool drop_root = false;        // run as nobody (uid/gid 65534, no supplementary groups)
  int timeout_seconds = 120;
};

RunResult run(const std::string& binary, const std::vector<std::string>& args, const RunOptions& opt = {});

// Subcommands listed by `cpumodel --help` ("  NAME   summary" lines after "commands:").
std::vector<std::string> available_commands(const std::string& binary);

}  // namespace cpumodel::bad_inputs
