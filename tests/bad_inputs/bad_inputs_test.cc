// Bad input as a user meets it: the built `cpumodel` binary (CPUMODEL_BINARY) run with one broken
// input per case. Each case states the exit code (../shared/CLI.md: 2 bad usage or input, 3 this
// host cannot do it) and a regex the one error line must match. For every case:
//   - the process exits (no signal, no hang) with that code;
//   - stderr is exactly one line "cpumodel: error: ..." matching the regex (plus "cpumodel:
//     warning:" lines only where the case allows them), with no stack trace, "terminate called",
//     sanitizer report or other noise;
//   - nothing is left in the case's output directory: no partial file, no temporary file, and a
//     pre-existing output file is byte-for-byte unchanged.
// Cases for subcommands this build does not have yet (`cpumodel --help` does not list them) skip
// with "command X not available in this build" and turn on by themselves when the command lands.
//
// "Unreadable file": the suite usually runs as root, which reads any file whatever its mode bits.
// So unreadability is produced three ways that hold for root too: a Unix socket (open() fails with
// ENXIO), /proc/self/mem (open() succeeds, read() at offset 0 fails with EIO), and a 0600 file read
// by the binary run as nobody (uid 65534; the case skips when the suite is not root). /dev/kvm
// "not permitted" is the same drop to nobody (crw-rw---- root:kvm), "absent" is
// CPUMODEL_KVM_DEVICE (vmm/include/cpumodel/vmm/kvm.h) pointing at a path that does not exist.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "cases.h"
#include "run.h"

namespace cpumodel::bad_inputs {
namespace {

namespace fs = std::filesystem;

const char* const kPrecious = "precious: an existing file a failed run must not touch\n";

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_all(const fs::path& p, std::string_view content) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
}

void make_sparse(const fs::path& p, uintmax_t size) {
  write_all(p, "");
  fs::resize_file(p, size);
}

void make_socket(const fs::path& p) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string s = p.string();
  ASSERT_LT(s.size(), sizeof addr.sun_path) << s;
  std::copy(s.begin(), s.end(), addr.sun_path);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << s;
  ::close(fd);  // the socket file stays; open() on it fails with ENXIO
}

// A minimal bzImage the boot loader accepts (Linux boot protocol 2.15, Documentation/x86/boot.rst):
// 4 setup sectors + the boot sector, then 4 KiB of "kernel" (hlt), loaded at 1 MiB, run at 16 MiB,
// init_size 1 MiB, so it ends at 17 MiB of guest RAM. Small, so the boot rows stay fast under
// ASan and need no /boot.
std::string fake_bzimage() {
  std::string img(5 * 512 + 4096, '\0');
  std::fill(img.begin() + 5 * 512, img.end(), '\xf4');
  auto put = [&img](size_t at, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) img[at + static_cast<size_t>(i)] = static_cast<char>(v >> (8 * i));
  };
  put(0x1f1, 4, 1);               // setup_sects
  put(0x1fe, 0xaa55, 2);          // boot_flag
  put(0x200, 0x66eb, 2);          // jmp: the header ends at 0x202 + 0x66 = 0x268
  img.replace(0x202, 4, "HdrS");
  put(0x206, 0x020f, 2);          // protocol 2.15
  put(0x211, 0x01, 1);            // loadflags: LOADED_HIGH
  put(0x214, 0x100000, 4);        // code32_start
  put(0x22c, 0x7fffffff, 4);      // initrd_addr_max
  put(0x230, 0x200000, 4);        // kernel_alignment
  put(0x234, 1, 1);               // relocatable_kernel
  put(0x236, 0x1, 2);             // xloadflags: XLF_KERNEL_64
  put(0x238, 2048, 4);            // cmdline_size
  put(0x258, 0x1000000, 8);       // pref_address
  put(0x260, 0x100000, 4);        // init_size
  return img;
}

// The files the cases name as @D/NAME. Real dumps come from the fuzz seeds (copies of
// ../shared/data/cpuid-dumps, see tests/fuzz/corpus/README.md) so the suite needs nothing else.
class Fixture {
 public:
  Fixture() {
    std::string tmpl = (fs::temp_directory_path() / "cpumodel-bad-inputs-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    fs::permissions(dir_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec);
    const fs::path seeds = fs::path(CPUMODEL_SOURCE_DIR) / "tests/fuzz/corpus";
    const fs::path xml = seeds / "fuzz_profile_libvirt_xml";
    fs::copy_file(xml / "Xeon-Gold-6148.xml", dir_ / "intel.xml");
    fs::copy_file(xml / "Core-i7-1270P.xml", dir_ / "intel2.xml");
    fs::copy_file(xml / "Ryzen-9-3900X-12-Core.xml", dir_ / "amd.xml");
    std::string intel = read_all(dir_ / "intel.xml");
    write_all(dir_ / "empty.txt", "");
    write_all(dir_ / "truncated.xml", intel.substr(0, intel.size() / 3));
    std::string dup = intel;  // the first <cpuid> line twice
    size_t a = dup.find("<cpuid "), b = dup.find('\n', a);
    dup.insert(b + 1, dup.substr(a, b + 1 - a));
    write_all(dir_ / "dup.xml", dup);
    std::string split = intel;  // a register value broken by a newline inside the attribute
    size_t edx = split.find("edx='0x") + 9;
    split.insert(edx, "\n");
    write_all(dir_ / "newline-attr.xml", split);
    std::string binary(4096, '\0');
    for (size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<char>((i * 2654435761u) >> 13);
    write_all(dir_ / "binary.bin", binary);
    make_sparse(dir_ / "huge.yaml", uintmax_t{80} << 20);  // above read_file's 64 MiB limit
    write_all(dir_ / "garbage.yaml", "this: is: not: [a profile\n");
    write_all(dir_ / "notprofile.yaml", "name: x\nfoo: 1\n");
    write_all(dir_ / "badhex.txt",
              "CPU 0:\n   0x00000000 0x00: eax=0x0000000d ebx=0xZZ ecx=0x6c65746e edx=0x49656e69\n");
    std::string aida = read_all(seeds / "fuzz_profile_aida64/CentaurHauls00307B2_KX6000_01.txt");
    write_all(dir_ / "truncated-aida.txt", aida.substr(0, 2000));  // cut inside a CPUID line
    write_all(dir_ / "secret.xml", intel);
    fs::permissions(dir_ / "secret.xml", fs::perms::owner_read | fs::perms::owner_write);
    fs::create_directory(dir_ / "adir");
    make_socket(dir_ / "sock");
    fs::create_directory(dir_ / "badmodels");
    write_all(dir_ / "badmodels/bad.yaml", "models:\n  - name: Broken\n    base: NoSuchModel\n");
    fs::create_directory(dir_ / "newline-models");
    write_all(dir_ / "newline-models/key.yaml", "models:\n  - name: X\n    \"multi\\nline\": 1\n");
    std::string bundle = read_all(seeds / "fuzz_bundle/three-hosts.pb");
    write_all(dir_ / "truncated.pb", bundle.substr(0, bundle.size() / 2));
    // A host name that is not UTF-8 (proto3 strings must be): refused, and protobuf's own
    // "[libprotobuf ERROR ...]" log line must not reach the user.
    write_all(dir_ / "badutf8.pb", std::string("\x0d" "CMBL" "\x10\x01" "\x1a\x04\x0a\x02\xff\xfe" "\x20\x01", 14));
    write_all(dir_ / "newer.pb", std::string("\x0d" "CMBL" "\x10\x63", 7));  // magic, version 99
    write_all(dir_ / "notbzimage", std::string(8192, 'k'));  // no "HdrS" at 0x202
    write_all(dir_ / "bzImage", fake_bzimage());
    make_sparse(dir_ / "initrd-4M", uintmax_t{4} << 20);  // -m 20M leaves 3 MiB above the kernel
    // A snapshot from a newer format: the header of migrate/include/cpumodel/migrate/snapshot.h
    // ("CPMSNAP\n", u16 major, u16 minor, u32 0, u64 payload length) with major 2, no payload.
    std::string snap("CPMSNAP\n" "\x02\x00" "\x00\x00" "\x00\x00\x00\x00", 16);
    snap += std::string(8 + 32, '\0');  // payload length 0, a checksum
    write_all(dir_ / "newer.snap", snap);
    write_all(dir_ / "truncated.snap", std::string("CPMSNAP\n" "\x01\x00", 10));  // cut in the header
  }
  ~Fixture() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_;
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

const std::vector<std::string>& commands() {
  static const std::vector<std::string> c = available_commands(CPUMODEL_BINARY);
  return c;
}

std::string substitute(std::string s, const fs::path& out_dir) {
  auto replace = [&s](const std::string& from, const std::string& to) {
    for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
      s.replace(p, from.size(), to);
  };
  replace("@D", fixture().dir().string());
  replace("@S", std::string(CPUMODEL_SOURCE_DIR) + "/tests/bad_inputs/data");
  replace("@O", out_dir.string());
  replace("@C", std::to_string(::sysconf(_SC_NPROCESSORS_CONF)));
  return s;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Things that must never reach a user's terminal.
constexpr const char* kNoise[] = {"terminate called", "what():", "Aborted", "Segmentation fault",
                                  "AddressSanitizer", "LeakSanitizer", "runtime error:", "    #0 0x",
                                  "Assertion", "core dumped", "std::bad_", "basic_string"};

class BadInput : public ::testing::TestWithParam<Case> {};

TEST_P(BadInput, FailsCleanly) {
  const Case& c = GetParam();
  const auto& cmds = commands();
  ASSERT_FALSE(cmds.empty()) << "'cpumodel --help' lists no commands";
  if (!c.command.empty() && std::find(cmds.begin(), cmds.end(), c.command) == cmds.end())
    GTEST_SKIP() << "command " << c.command << " not available in this build";
  if (c.need == Need::kRoot && ::geteuid() != 0)
    GTEST_SKIP() << "needs root (to drop to uid 65534 and be refused)";
  if (c.need == Need::kSnapshots && std::find(cmds.begin(), cmds.end(), "state") == cmds.end())
    GTEST_SKIP() << "command state not available in this build (no snapshot format yet)";

  fs::path out_dir = fixture().dir() / ("out-" + c.name);
  fs::create_directory(out_dir);
  fs::permissions(out_dir, fs::perms::all);  // writable by nobody for the drop-root cases
  std::string out_file = c.out_file.empty() ? "" : substitute(c.out_file, out_dir);
  if (c.precreate) write_all(out_file, kPrecious);
  const std::vector<std::string> before = listing(out_dir);

  std::vector<std::string> args;
  if (!c.command.empty()) args.push_back(c.command);
  for (const auto& a : c.args) args.push_back(substitute(a, out_dir));
  RunOptions opt;
  for (const auto& e : c.env) opt.env.push_back(substitute(e, out_dir));
  opt.drop_root = c.need == Need::kRoot;
  RunResult r = run(CPUMODEL_BINARY, args, opt);

  std::string shown = "stderr:\n" + r.err + "stdout:\n" + r.out.substr(0, 2000);
  ASSERT_FALSE(r.timed_out) << "hung; " << shown;
  ASSERT_TRUE(r.exited) << "killed by signal " << r.signal << "; " << shown;
  EXPECT_EQ(r.exit_code, c.exit_code) << shown;
  for (const char* noise : kNoise) EXPECT_EQ(r.err.find(noise), std::string::npos) << noise << " in " << shown;

  const std::regex expect(substitute(c.error, out_dir), std::regex::ECMAScript | std::regex::icase);
  const std::string lead = c.stderr_rule == StderrRule::kWarningOnly ? "cpumodel: warning: " : "cpumodel: error: ";
  int matching = 0, other = 0;
  for (const auto& line : lines_of(r.err)) {
    if (line.rfind(lead, 0) == 0 && std::regex_search(line.substr(lead.size()), expect)) {
      ++matching;
    } else if (line.rfind("cpumodel: warning: ", 0) == 0 && c.stderr_rule == StderrRule::kErrorAndWarnings) {
      continue;
    } else {
      ++other;
    }
  }
  EXPECT_EQ(matching, 1) << "expected one '" << lead << "' line matching /" << c.error << "/; " << shown;
  EXPECT_EQ(other, 0) << "unexpected stderr lines; " << shown;

  EXPECT_EQ(listing(out_dir), before) << "the output directory changed (partial or temporary file left)";
  if (c.precreate) {
    EXPECT_EQ(read_all(out_file), kPrecious) << out_file << " was modified";
  } else if (!out_file.empty()) {
    EXPECT_FALSE(fs::exists(out_file)) << out_file << " was written";
  }
  std::error_code ec;
  fs::remove_all(out_dir, ec);
}

INSTANTIATE_TEST_SUITE_P(Cli, BadInput, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

TEST(BadInputs, TableCoversEveryCommand) {
  // A new subcommand needs bad-input cases too: fail when `--help` lists one the table lacks.
  std::vector<std::string> in_table;
  for (const auto& c : all_cases()) in_table.push_back(c.command);
  for (const auto& cmd : commands())
    EXPECT_NE(std::find(in_table.begin(), in_table.end(), cmd), in_table.end())
        << "no bad-input case for subcommand '" << cmd << "' (add rows to tests/bad_inputs/cases.cc)";
  EXPECT_GE(all_cases().size(), 40u);
}

}  // namespace
}  // namespace cpumodel::bad_inputs
