// Profile importers: every real dump imports, agrees with what its provenance says, round-trips
// through our YAML and through `cpuid -r` text; bad input gives one line naming file:line.
#include <dirent.h>
#include <gtest/gtest.h>

#include "run_capture.h"
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>

#include "cpumodel/cpuid/decode.h"
#include "cpumodel/cpuid/profile.h"

namespace cpumodel {
namespace {

using cpumodel::testing::run_capture;

const std::string kDumps = std::string(CPUMODEL_SHARED_DIR) + "/data/cpuid-dumps";

std::vector<std::string> dump_files() {
  std::vector<std::string> out;
  for (const std::string& dir : {kDumps, kDumps + "/instlatx64"}) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) continue;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n.size() > 4 && (n.ends_with(".xml") || n.ends_with(".txt"))) out.push_back(dir + "/" + n);
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string base(const std::string& p) { return p.substr(p.find_last_of('/') + 1); }

// PROVENANCE.md's table: file -> "0x6/0x2d/7", leaves, MSRs (written by whoever collected the dumps).
struct Provenance {
  std::string fms;
  size_t leaves = 0, msrs = 0;
};
std::map<std::string, Provenance> read_provenance() {
  std::map<std::string, Provenance> out;
  std::ifstream in(kDumps + "/PROVENANCE.md");
  std::regex row(R"(^\| (x86_64-cpuid-[^ ]+\.xml) \| \w+ \| (0x[0-9a-f]+/0x[0-9a-f]+/\d+) \| [^|]+ \| (\d+) \| (\d+) \|)");
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, row)) out[m[1]] = {m[2], std::stoul(m[3]), std::stoul(m[4])};
  }
  return out;
}

std::string fms_text(const DecodedCpu& d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "0x%x/0x%x/%u", d.signature.family, d.signature.model, d.signature.stepping);
  return buf;
}

TEST(Dumps, EveryDumpImportsDecodesAndMatchesItsProvenance) {
  auto files = dump_files();
  if (files.empty()) GTEST_SKIP() << kDumps << " is not here";
  EXPECT_EQ(files.size(), 72u);
  auto prov = read_provenance();
  EXPECT_EQ(prov.size(), 69u) << "PROVENANCE.md table not parsed";
  for (const auto& f : files) {
    SCOPED_TRACE(f);
    auto p = load_profile(f);
    ASSERT_TRUE(p.ok()) << p.error().message;
    EXPECT_EQ(p->format, f.ends_with(".xml") ? "libvirt-xml" : "aida64");
    DecodedCpu d = decode_cpu(p->cpuid, p->msrs);
    EXPECT_FALSE(d.vendor.empty());
    EXPECT_GT(d.features.count(), 10u);
    auto it = prov.find(base(f));
    if (it != prov.end()) {
      EXPECT_EQ(fms_text(d), it->second.fms);
      EXPECT_EQ(p->cpuid.size(), it->second.leaves);
      EXPECT_EQ(p->msrs.size(), it->second.msrs);
    }
    // libvirt keeps the brand string as the first-line comment (a one-word label such as
    // "Cooperlake" marks an engineering sample whose brand string is a placeholder).
    std::string text = slurp(f);
    if (f.ends_with(".xml") && text.starts_with("<!-- ") && !d.brand.empty()) {
      std::string comment = text.substr(5, text.find(" -->") - 5);
      if (comment.find(' ') != std::string::npos) {
        EXPECT_EQ(d.brand, comment);
      }
    }
  }
}

TEST(Dumps, YamlRoundTripIsExact) {
  auto files = dump_files();
  if (files.empty()) GTEST_SKIP() << kDumps << " is not here";
  for (const auto& f : files) {
    SCOPED_TRACE(f);
    auto p = load_profile(f);
    ASSERT_TRUE(p.ok()) << p.error().message;
    p->facts["source_file"] = base(f);
    p->facts["odd value"] = "quotes \" and \\ and \ttab: colon # hash";
    p->topology = HostTopology{2, 1, 8, 2, 2, 32};
    p->tsc_khz = 2095078.5;
    p->kvm_cpuid = p->cpuid.masked(p->cpuid);
    p->kvm_msrs = MsrMap{{0x10a, 0xdeadbeef00000001ull}};
    std::string yaml = profile_to_yaml(*p);
    auto q = parse_profile(yaml, "round.yaml");
    ASSERT_TRUE(q.ok()) << q.error().message;
    p->source = "round.yaml";
    p->format = "yaml";
    EXPECT_TRUE(*q == *p);
    EXPECT_EQ(profile_to_yaml(*q), yaml);
  }
}

TEST(Dumps, CpuidRRoundTrip) {
  auto files = dump_files();
  if (files.empty()) GTEST_SKIP() << kDumps << " is not here";
  size_t complete = 0;
  for (const auto& f : files) {
    SCOPED_TRACE(f);
    auto p = load_profile(f);
    ASSERT_TRUE(p.ok());
    std::string text = table_to_cpuid_r(p->cpuid);
    auto q = parse_profile(text, "dump.cpuid");
    // A dump that skipped its last leaves reads as truncated cpuid -r text (cpuid prints every
    // leaf up to the maximum); all others must come back identical.
    if (!q.ok()) {
      EXPECT_NE(q.error().message.find("truncated"), std::string::npos) << q.error().message;
      continue;
    }
    ++complete;
    EXPECT_EQ(q->format, "cpuid-r");
    EXPECT_TRUE(q->cpuid == p->cpuid);
  }
  EXPECT_GE(complete, 60u);
}

// `cpuid -1 -r` on this machine, printed back by table_to_cpuid_r, must be the same text.

TEST(CpuidR, RealToolOutputRoundTripsByteForByte) {
  int st = -1;
  std::string text = run_capture("cpuid -1 -r 2>/dev/null", &st);
  if (st != 0 || text.empty()) GTEST_SKIP() << "Debian's cpuid tool is not installed";
  auto p = parse_profile(text, "cpuid-1-r.txt");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->format, "cpuid-r");
  EXPECT_EQ(table_to_cpuid_r(p->cpuid), text);
  // `cpuid -r` (all CPUs): the first CPU only.
  std::string all = run_capture("cpuid -r 2>/dev/null");
  auto q = parse_profile(all, "cpuid-r.txt");
  ASSERT_TRUE(q.ok()) << q.error().message;
  EXPECT_EQ(q->cpuid.size(), p->cpuid.size());
}

TEST(CpuidR, AcceptsOldFormatWithoutSubleaf) {
  auto p = parse_profile(
      "CPU 0:\n   0x00000000: eax=0x00000001 ebx=0x756e6547 ecx=0x6c65746e edx=0x49656e69\n"
      "   0x00000001: eax=0x000306f2 ebx=0x00000000 ecx=0x00000000 edx=0x00000000\n"
      "   0x80000000: eax=0x80000000 ebx=0x00000000 ecx=0x00000000 edx=0x00000000\n"
      "CPU 1:\n   0x00000000: eax=0x00000001 ebx=0x756e6547 ecx=0x6c65746e edx=0x49656e69\n",
      "old.txt");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->cpuid.size(), 3u);
  EXPECT_EQ(p->cpuid.vendor(), "GenuineIntel");
}

// ---- bad input: one line, names file:line, exit code 2 ----

const char* const kXmlHead = "<cpudata arch='x86'>\n";
const char* const kLeaf0 =
    "  <cpuid eax_in='0x00000000' ecx_in='0x00' eax='0x0000000d' ebx='0x756e6547' ecx='0x6c65746e' "
    "edx='0x49656e69'/>\n";
const char* const kRLeaf0 = "   0x00000000 0x00: eax=0x00000001 ebx=0x756e6547 ecx=0x6c65746e edx=0x49656e69\n";
const char* const kRLeaf1 = "   0x00000001 0x00: eax=0x000306f2 ebx=0x00000000 ecx=0x00000000 edx=0x00000000\n";
const char* const kRExt = "   0x80000000 0x00: eax=0x80000000 ebx=0x00000000 ecx=0x00000000 edx=0x00000000\n";
const char* const kYamlHead = "name: h\ncpuid:\n  - {leaf: 0x0, subleaf: 0x0, eax: 0x1, ebx: 0x756e6547, ecx: 0x6c65746e, edx: 0x49656e69}\n";

struct Bad {
  const char* what;
  std::string text;
  std::string where;  // expected "file:line:" prefix
  const char* says;   // expected words in the message
};

std::vector<Bad> bad_inputs() {
  std::string x = kXmlHead, l0 = kLeaf0;
  return {
      {"empty file", "", "bad:1:", "empty"},
      {"only whitespace", "\n\n  \n", "bad:1:", "empty"},
      {"binary file", std::string("\x7f" "ELF\x02\x01\x01\0\0\0\0\0", 12) + "garbage", "bad:1:", "binary"},
      {"XML never closed", x + l0, "bad:2:", "truncated XML"},
      {"XML attribute never closed", x + "  <cpuid eax_in='0x0 ecx_in='0x0'/>", "bad:2:", "malformed XML"},
      {"XML wrong root", "<?xml version='1.0'?>\n<domain type='kvm'>\n</domain>\n", "bad:2:", "<domain>"},
      {"XML non-hex register", x + l0 + "  <cpuid eax_in='0x1' ecx_in='0x0' eax='0x0003G6f2' ebx='0x0' ecx='0x0' edx='0x0'/>\n</cpudata>\n",
       "bad:3:", "not a hex number"},
      {"XML missing register", x + "  <cpuid eax_in='0x0' ecx_in='0x0' eax='0x1' ebx='0x0' ecx='0x0'/>\n</cpudata>\n", "bad:2:", "lacks attribute edx"},
      {"XML duplicate leaf", x + l0 + "\n" + l0 + "</cpudata>\n", "bad:4:", "duplicate CPUID leaf 0x00000000 subleaf 0x00 (first given at line 2)"},
      {"XML unknown element", x + l0 + "  <feature name='x'/>\n</cpudata>\n", "bad:3:", "unexpected element <feature>"},
      {"XML without leaf 0", x + "  <cpuid eax_in='0x1' ecx_in='0x0' eax='0x1' ebx='0x0' ecx='0x0' edx='0x0'/>\n</cpudata>\n", "bad:1:", "no CPUID leaf 0x00000000"},
      {"cpuid -r cut inside a line", std::string("CPU:\n") + kRLeaf0 + "   0x00000001 0x00: eax=0x000306f2 ebx=0x0000",
       "bad:3:", "truncated line"},
      {"cpuid -r cut between lines", std::string("CPU:\n") + kRLeaf0, "bad:2:", "reports leaves up to 0x00000001"},
      {"cpuid -r without extended leaves", std::string("CPU:\n") + kRLeaf0 + kRLeaf1, "bad:3:", "no extended leaves"},
      {"cpuid -r non-hex register", std::string("CPU:\n") + kRLeaf0 + "   0x00000001 0x00: eax=0x000306fz ebx=0x0 ecx=0x0 edx=0x0\n",
       "bad:3:", "not a hex number"},
      {"cpuid -r duplicate leaf", std::string("CPU:\n") + kRLeaf0 + kRLeaf1 + kRLeaf1 + kRExt, "bad:4:", "duplicate CPUID leaf 0x00000001"},
      {"cpuid -r stray line", std::string("CPU:\n") + kRLeaf0 + "hello\n", "bad:3:", "unexpected line"},
      {"AIDA64 cut inside a line", "CPUID 00000000: 00000001-756E6547-6C65746E-49656E69\nCPUID 00000001: 000306F2-0000",
       "bad:2:", "truncated CPUID line"},
      {"AIDA64 non-hex register", "CPUID 00000000: 00000001-756E6547-6C65746E-49656E69\nCPUID 00000001: 000306F2-0000080X-00000000-00000000\n",
       "bad:2:", "not 8 hex digits"},
      {"AIDA64 duplicate leaf", "CPUID 00000000: 00000001-756E6547-6C65746E-49656E69\nCPUID 00000000: 00000001-756E6547-6C65746E-49656E69\n",
       "bad:2:", "duplicate"},
      {"YAML malformed", "name: [unclosed\ncpuid: {\n", "bad:2:", "malformed YAML"},
      {"YAML not a profile", "just some words\n", "bad:1:", "not a host profile"},
      {"YAML non-hex register", std::string(kYamlHead) + "  - {leaf: 0x1, subleaf: 0x0, eax: 0x306g2, ebx: 0x0, ecx: 0x0, edx: 0x0}\n",
       "bad:4:", "cpuid[1].eax: '0x306g2' is not a hex number"},
      {"YAML decimal register", std::string(kYamlHead) + "  - {leaf: 0x1, subleaf: 0x0, eax: 12, ebx: 0x0, ecx: 0x0, edx: 0x0}\n",
       "bad:4:", "not a hex number"},
      {"YAML duplicate leaf", std::string(kYamlHead) + "  - {leaf: 0x0, subleaf: 0x0, eax: 0x1, ebx: 0x0, ecx: 0x0, edx: 0x0}\n",
       "bad:4:", "duplicate CPUID leaf 0x00000000 subleaf 0x00 (first given at line 3)"},
      {"YAML missing register", std::string(kYamlHead) + "  - {leaf: 0x1, eax: 0x1, ebx: 0x0, ecx: 0x0}\n", "bad:4:", "missing 'edx'"},
      {"YAML unknown key", std::string(kYamlHead) + "kvm_cpuids: []\n", "bad:4:", "unknown key 'kvm_cpuids'"},
      {"YAML bad topology", std::string(kYamlHead) + "topology: {cores: many}\n", "bad:4:", "not a whole number"},
  };
}

TEST(BadInput, OneLineNamingFileAndLineExitCode2) {
  for (const auto& b : bad_inputs()) {
    SCOPED_TRACE(b.what);
    auto r = parse_profile(b.text, "bad");
    ASSERT_FALSE(r.ok());
    const Error& e = r.error();
    EXPECT_EQ(e.exit_code, kExitUsage);
    EXPECT_EQ(e.message.find('\n'), std::string::npos) << e.message;
    EXPECT_TRUE(e.message.starts_with(b.where)) << e.message;
    EXPECT_NE(e.message.find(b.says), std::string::npos) << e.message;
  }
}

TEST(BadInput, MissingFileNamesIt) {
  auto r = load_profile("/nonexistent/dir/h.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().message.starts_with("/nonexistent/dir/h.yaml: ")) << r.error().message;
  EXPECT_EQ(r.error().exit_code, kExitUsage);
}

TEST(Sniff, ByContentNotExtension) {
  EXPECT_EQ(sniff_profile_format(std::string("  \n") + kXmlHead), "libvirt-xml");
  EXPECT_EQ(sniff_profile_format(std::string("CPU:\n") + kRLeaf0), "cpuid-r");
  EXPECT_EQ(sniff_profile_format(kRLeaf0), "cpuid-r");
  EXPECT_EQ(sniff_profile_format("------[ Versions ]------\nCPUID 00000000: 00000001-0-0-0\n"), "aida64");
  EXPECT_EQ(sniff_profile_format(kYamlHead), "yaml");
  auto p = parse_profile(std::string(kXmlHead) + kLeaf0 + "</cpudata>\n", "looks-like.yaml");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->format, "libvirt-xml");
  EXPECT_EQ(p->name, "looks-like");
  EXPECT_EQ(profile_name_from_path("/a/b/x86_64-cpuid-Xeon-E5-2650.xml"), "Xeon-E5-2650");
}

// data/hosts: the sample cluster loads, and each host is still exactly its source dump.
TEST(SampleCluster, MatchesItsSourceDumps) {
  size_t hosts = 0;
  for (const char* vendor : {"intel", "amd"}) {
    std::string dir = std::string(CPUMODEL_SOURCE_DATA_DIR) + "/hosts/" + vendor;
    DIR* d = ::opendir(dir.c_str());
    ASSERT_NE(d, nullptr) << dir;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (!n.ends_with(".yaml")) continue;
      SCOPED_TRACE(dir + "/" + n);
      ++hosts;
      auto p = load_profile(dir + "/" + n);
      ASSERT_TRUE(p.ok()) << p.error().message;
      EXPECT_EQ(p->format, "yaml");
      EXPECT_EQ(decode_cpu(p->cpuid).vendor, std::string(vendor) == "intel" ? "GenuineIntel" : "AuthenticAMD");
      EXPECT_FALSE(p->kvm_cpuid.has_value());
      std::string src = kDumps + "/" + p->facts["source_file"];
      if (::access(src.c_str(), R_OK) != 0) continue;
      auto dump = load_profile(src);
      ASSERT_TRUE(dump.ok()) << dump.error().message;
      EXPECT_TRUE(dump->cpuid == p->cpuid);
      EXPECT_EQ(dump->msrs, p->msrs);
    }
    ::closedir(d);
  }
  EXPECT_EQ(hosts, 8u);
}

// ---- import_profile and the CLI ----

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/cpumodel-profile-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

TEST(Import, WritesNamedYamlThatLoadsBack) {
  std::string dump = kDumps + "/x86_64-cpuid-EPYC-7601-32-Core.xml";
  if (::access(dump.c_str(), R_OK) != 0) GTEST_SKIP() << dump << " is not here";
  TempDir t;
  auto out = import_profile(dump, t.path);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, t.path + "/EPYC-7601-32-Core.yaml");
  auto a = load_profile(dump);
  auto b = load_profile(*out);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->format, "yaml");
  EXPECT_EQ(b->name, "EPYC-7601-32-Core");
  EXPECT_TRUE(b->cpuid == a->cpuid);
  EXPECT_EQ(b->facts["source_file"], "x86_64-cpuid-EPYC-7601-32-Core.xml");
  EXPECT_EQ(b->facts["source_format"], "libvirt-xml");
}

struct CliRun {
  int status = -1;
  std::string out, err;
};

CliRun run_cli(const std::string& args) {
  TempDir t;
  CliRun r;
  std::string cmd = std::string(CPUMODEL_BINARY) + " " + args + " >" + t.path + "/out 2>" + t.path + "/err";
  int st = std::system(cmd.c_str());
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.out = slurp(t.path + "/out");
  r.err = slurp(t.path + "/err");
  return r;
}

void expect_one_error_line(const CliRun& r, const std::string& mentions) {
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(r.err.starts_with("cpumodel: error: ")) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(mentions), std::string::npos) << r.err;
}

TEST(Cli, DecodeAndImportRejectBadFilesWithExit2) {
  TempDir t;
  std::string bad = t.path + "/bad.xml";
  std::ofstream(bad) << kXmlHead << kLeaf0 << "  <cpuid eax_in='0x1' eax='zz'/>\n";
  expect_one_error_line(run_cli("decode " + bad), bad + ":3:");
  expect_one_error_line(run_cli("decode --json " + bad), bad + ":3:");
  expect_one_error_line(run_cli("import " + bad + " --out " + t.path), bad + ":3:");
  EXPECT_NE(::access((t.path + "/bad.yaml").c_str(), F_OK), 0) << "a failed import left a file";
  expect_one_error_line(run_cli("decode " + t.path + "/missing.yaml"), "missing.yaml");
  expect_one_error_line(run_cli("import " + bad + " --out " + t.path + "/nodir"), "nodir");
}

TEST(Cli, DecodeAndImportGoodFiles) {
  std::string dump = kDumps + "/x86_64-cpuid-Xeon-E5-2650-v3.xml";
  if (::access(dump.c_str(), R_OK) != 0) GTEST_SKIP() << dump << " is not here";
  TempDir t;
  CliRun imp = run_cli("import " + dump + " --out " + t.path);
  ASSERT_EQ(imp.status, 0) << imp.err;
  std::string yaml = t.path + "/Xeon-E5-2650-v3.yaml";
  CliRun json = run_cli("decode --json " + yaml);
  ASSERT_EQ(json.status, 0) << json.err;
  for (const char* f : {"\"vendor\": \"GenuineIntel\"", "\"family\": 6", "\"model_number\": 63", "\"stepping\": 2",
                        "\"brand\": \"Intel(R) Xeon(R) CPU E5-2650 v3 @ 2.30GHz\"", "\"features\": [", "\"unknown_bits\": ["})
    EXPECT_NE(json.out.find(f), std::string::npos) << f;
  CliRun two = run_cli("decode --json " + yaml + " " + dump);
  ASSERT_EQ(two.status, 0) << two.err;
  EXPECT_TRUE(two.out.starts_with("[")) << two.out.substr(0, 40);
  CliRun text = run_cli("decode " + dump);
  ASSERT_EQ(text.status, 0);
  EXPECT_NE(text.out.find("Intel(R) Xeon(R) CPU E5-2650 v3 @ 2.30GHz"), std::string::npos);
}

TEST(Cli, HostSavesAProfileAtomically) {
  TempDir t;
  std::string out = t.path + "/me.yaml";
  CliRun r = run_cli("host --save " + out);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("vendor"), std::string::npos);
  EXPECT_NE(r.out.find("backend"), std::string::npos);
  auto p = load_profile(out);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->format, "yaml");
  EXPECT_TRUE(p->cpuid.has(0));
  EXPECT_TRUE(p->facts.count("kvm_device"));
  // A directory that does not exist: exit 2, nothing written.
  expect_one_error_line(run_cli("host --save " + t.path + "/no/such/dir/me.yaml"), "no/such/dir/me.yaml");
  CliRun j = run_cli("host --json");
  ASSERT_EQ(j.status, 0) << j.err;
  EXPECT_TRUE(j.out.starts_with("{")) << j.out.substr(0, 40);
  EXPECT_NE(j.out.find("\"kvm_cpuid\""), std::string::npos);
}

TEST(Cli, UsageErrorsExit2) {
  expect_one_error_line(run_cli("decode"), "no PROFILE");
  expect_one_error_line(run_cli("import /dev/null"), "--out");
  expect_one_error_line(run_cli("decode /dev/null"), "empty file");
}

}  // namespace
}  // namespace cpumodel
