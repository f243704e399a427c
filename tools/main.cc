// cpumodel: one executable, subcommands like git/virsh. Dispatch only; each subcommand lives in
// its own cmd_*.cc and the work in the libraries.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "command.h"

namespace cpumodel::tools {
namespace {

std::vector<Command>& registry() {
  static std::vector<Command> r;
  return r;
}

void print_usage(std::ostream& os) {
  os << "usage: cpumodel [--version] [--help] COMMAND [ARGS]\n\n"
        "Safe CPU models for live-migrating KVM guests across x86 hosts.\n\ncommands:\n";
  auto list = commands();
  std::sort(list.begin(), list.end(), [](const Command& a, const Command& b) {
    return std::string_view(a.name) < b.name;
  });
  for (const auto& c : list) {
    std::string name = c.name;
    name.resize(std::max<size_t>(name.size(), 14), ' ');
    os << "  " << name << c.summary << "\n";
  }
  os << "\nRun 'cpumodel COMMAND --help' for a command's options and an example.\n"
        "Exit codes: 0 ok, 1 negative verdict, 2 bad usage or input, 3 this host cannot do it.\n";
}

int run_command(const Command& c, std::vector<std::string> args) {
  po::options_description opts(std::string("usage: cpumodel ") + c.synopsis + "\n\noptions");
  opts.add_options()("help,h", "show this help");
  po::positional_options_description pos;
  c.options(opts, pos);
  po::variables_map vm;
  try {
    auto parsed = po::command_line_parser(qemu_aliases(std::move(args)))
                      .options(opts)
                      .positional(pos)
                      .style(po::command_line_style::default_style &
                             ~po::command_line_style::allow_guessing)
                      .run();
    po::store(parsed, vm);
    if (vm.count("help")) {
      std::cout << c.summary << "\n\n" << opts << "\nexample:\n  " << c.example << "\n";
      return kExitOk;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    return fail(std::string(c.name) + ": " + e.what() + " (see 'cpumodel " + c.name + " --help')");
  }
  return c.run(vm);
}

}  // namespace

Registrar::Registrar(const Command& c) { registry().push_back(c); }
const std::vector<Command>& commands() { return registry(); }

// Errors and warnings are one line whatever they quote (a file name, a token from the input):
// control characters are written as escapes, bytes that are not printable ASCII as \xNN.
std::string one_line(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

int fail(const Error& e) {
  std::fprintf(stderr, "cpumodel: error: %s\n", one_line(e.message).c_str());
  return e.exit_code;
}
int fail(const std::string& message, int exit_code) { return fail(Error{message, exit_code}); }
void warn(const std::string& message) {
  std::fprintf(stderr, "cpumodel: warning: %s\n", one_line(message).c_str());
}
void note(const std::string& message) { std::fprintf(stderr, "cpumodel: note: %s\n", message.c_str()); }
bool stderr_is_tty() { return ::isatty(2) == 1; }

void print_feature_list(std::ostream& os, const FeatureSet& features) {
  os << "features (" << features.count() << "):";
  size_t col = 80;
  for (const auto& n : features.names()) {
    if (col + n.size() + 1 > 78) {
      os << "\n ";
      col = 1;
    }
    os << " " << n;
    col += n.size() + 1;
  }
  os << "\n";
}

std::vector<std::string> qemu_aliases(std::vector<std::string> args) {
  static const char* const kAliases[] = {"-cpu", "-smp", "-m", "-kernel", "-initrd", "-append"};
  for (auto& a : args)
    for (const char* alias : kAliases)
      if (a == alias) a = std::string("-") + alias;
  return args;
}

}  // namespace cpumodel::tools

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// A command returns once it has written its output and released what it made (files renamed,
// sockets removed, VMs closed, threads joined). What exit() would do after that is free memory the
// kernel takes back anyway, the static tables' among it: ~0.1-0.2 ms of a 4 ms `verify`. So the
// streams are flushed and the process leaves without it. Sanitizer builds exit normally, for
// LeakSanitizer's check at exit.
int leave(int code) {
  if (kSanitized) return code;
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  std::_Exit(code);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cpumodel::tools;
  // One malloc arena for every thread: a vCPU thread's first allocation would otherwise map (and
  // trim) a 64 MiB arena of its own, ~20 us per vCPU at start and address space for the VM's life;
  // no thread here allocates on a hot path.
  ::mallopt(M_ARENA_MAX, 1);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    print_usage(std::cerr);
    return cpumodel::kExitUsage;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_usage(std::cout);
    return cpumodel::kExitOk;
  }
  if (args[0] == "--version") {
    std::cout << "cpumodel " CPUMODEL_VERSION "\n";
    return cpumodel::kExitOk;
  }
  for (const auto& c : commands())
    if (args[0] == c.name) return leave(run_command(c, std::vector<std::string>(args.begin() + 1, args.end())));
  return fail("unknown command '" + args[0] + "' (see 'cpumodel --help')");
}
