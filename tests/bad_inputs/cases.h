// The bad-input table (cases.cc): one row per broken input a user can hand to cpumodel.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace cpumodel::bad_inputs {

enum class StderrRule {
  kErrorOnly,         // exactly one "cpumodel: error:" line matching `error`, nothing else
  kErrorAndWarnings,  // the same, plus any number of "cpumodel: warning:" lines
  kWarningOnly,       // a success that must warn: one "cpumodel: warning:" line matching `error`
};

enum class Need {
  kNothing,
  kRoot,       // run as nobody: the suite must be root to drop to it
  kSnapshots,  // the snapshot format (issue 8): `cpumodel state` exists
};

struct Case {
  std::string name;               // gtest name: [A-Za-z0-9_]
  std::string command;            // subcommand (skipped when this build lacks it); "" for none
  // @D = fixture dir, @S = tests/bad_inputs/data, @O = this case's output dir, @C = a CPU number this host
  // does not have (the count of configured CPUs); also substituted in `error` and `env`.
  std::vector<std::string> args;
  int exit_code = 2;              // ../shared/CLI.md
  std::string error;              // regex (ECMAScript, case-insensitive) on the text after "cpumodel: error: "
  StderrRule stderr_rule = StderrRule::kErrorOnly;
  std::string out_file;           // a path the command would write: must not exist afterwards...
  bool precreate = false;         // ...or, when pre-created, must keep its content
  std::vector<std::string> env;   // extra NAME=value
  Need need = Need::kNothing;
};

const std::vector<Case>& all_cases();
// gtest prints a case by its name.
inline void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

}  // namespace cpumodel::bad_inputs
