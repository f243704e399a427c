// The subcommand table. Each tools/cmd_*.cc registers one subcommand with a static Registrar,
// like kvmtool's builtin-*.c: main.cc only dispatches.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "cpumodel/cpuid/features.h"
#include "cpumodel/cpuid/result.h"

namespace cpumodel::tools {

namespace po = boost::program_options;

struct Command {
  const char* name;
  const char* synopsis;  // "decode PROFILE [--json]"
  const char* summary;   // one line for `cpumodel --help`
  const char* example;   // shown by `cpumodel NAME --help`
  // Declares options; positional arguments go under the name "args" unless positional() says.
  void (*options)(po::options_description& opts, po::positional_options_description& pos);
  int (*run)(const po::variables_map& vm);
};

struct Registrar {
  explicit Registrar(const Command& c);
};

const std::vector<Command>& commands();

// Prints "cpumodel: error: ..." and returns the error's exit code.
int fail(const Error& e);
int fail(const std::string& message, int exit_code = kExitUsage);
void warn(const std::string& message);
void note(const std::string& message);
// True when stderr is a terminal (progress goes there only then).
bool stderr_is_tty();

// "features (N):" then the names wrapped at 78 columns, two-space indent (show and expand).
void print_feature_list(std::ostream& os, const FeatureSet& features);

// QEMU spellings (-cpu, -smp, -m, -kernel, -initrd, -append) rewritten as GNU long options.
std::vector<std::string> qemu_aliases(std::vector<std::string> args);

}  // namespace cpumodel::tools
