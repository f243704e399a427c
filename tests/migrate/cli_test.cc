// The baseline / migrate-check / import --bundle commands end to end, through the built binary:
// exit codes and one-line errors of CLI.md, formats that other programs read back.
#include <fstream>
#include <regex>

#include "cpumodel/migrate/bundle.h"
#include "cpumodel/migrate/format.h"
#include "test_util.h"

namespace cpumodel {
namespace {

using test::dump;
using test::run_cpumodel;
using test::TempDir;

void expect_one_line_error(const test::RunResult& r, int code, const std::string& needle) {
  EXPECT_EQ(r.exit_code, code) << r.err;
  EXPECT_EQ(r.err.rfind("cpumodel: error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

const std::string kPair = dump("Xeon-E5-2650-v3") + " " + dump("Xeon-E5-2650-v4");

TEST(Cli, BaselineBadInput) {
  TempDir dir;
  expect_one_line_error(run_cpumodel("baseline"), 2, "no PROFILE");
  std::ofstream(dir.file("empty")).close();
  expect_one_line_error(run_cpumodel("baseline " + dir.file("empty")), 2, "empty");
  expect_one_line_error(run_cpumodel("baseline " + dir.file("missing.xml")), 2, "missing.xml");
  expect_one_line_error(run_cpumodel("baseline --format yml " + kPair), 2, "unknown --format");
  expect_one_line_error(run_cpumodel("baseline " + dump("Xeon-E5-2650-v3") + " " + dump("EPYC-7601-32-Core")), 2,
                        "--per-vendor");
  // A bundle cut short, and bytes that are neither a bundle nor a profile.
  ASSERT_EQ(run_cpumodel("import --bundle " + dir.file("c.pb") + " " + kPair).exit_code, 0);
  std::ifstream in(dir.file("c.pb"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(dir.file("cut.pb"), std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  expect_one_line_error(run_cpumodel("baseline " + dir.file("cut.pb")), 2, "truncated");
  std::ofstream(dir.file("junk.bin"), std::ios::binary) << std::string("\x01\x02\x03garbage\xff", 11);
  auto junk = run_cpumodel("baseline " + dir.file("junk.bin"));
  EXPECT_EQ(junk.exit_code, 2);
  EXPECT_EQ(std::count(junk.err.begin(), junk.err.end(), '\n'), 1) << junk.err;
}

TEST(Cli, BundleGivesTheSameBaselineAsTheFiles) {
  TempDir dir;
  auto imp = run_cpumodel("import --bundle " + dir.file("c.pb") + " " + kPair);
  ASSERT_EQ(imp.exit_code, 0) << imp.err;
  auto a = run_cpumodel("baseline --format qemu " + kPair);
  auto b = run_cpumodel("baseline --format qemu " + dir.file("c.pb"));
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(a.out.rfind("Haswell-v", 0), 0u) << a.out;
}

TEST(Cli, JsonFieldsOfTheContract) {
  auto r = run_cpumodel("baseline --format json " + kPair);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* k : {"\"model\"", "\"vendor\"", "\"features_added\"", "\"features_removed\"", "\"features\"",
                        "\"hosts\"", "\"phys_bits\": 46"})
    EXPECT_NE(r.out.find(k), std::string::npos) << k << "\n" << r.out;
}

TEST(Cli, YamlLoadsBackIntoTheCatalog) {
  TempDir dir;
  auto r = run_cpumodel("baseline --format yaml --name Lab-Baseline --out " + dir.file("lab.yaml") + " " + kPair);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto cat = Catalog::load_default({dir.path.string()});
  ASSERT_TRUE(cat.ok()) << cat.error().message;
  auto lab = cat->expand("Lab-Baseline");
  ASSERT_TRUE(lab.ok()) << lab.error().message;
  auto q = run_cpumodel("baseline --format qemu " + kPair);
  std::string spec = q.out.substr(0, q.out.find('\n'));
  auto direct = cat->expand(spec);
  ASSERT_TRUE(direct.ok()) << direct.error().message;
  EXPECT_EQ(lab->cpu.features, direct->cpu.features) << spec;
  // The rest of the expand command works on it too.
  auto e = run_cpumodel("expand Lab-Baseline --models-dir " + dir.path.string());
  EXPECT_EQ(e.exit_code, 0) << e.err;
}

TEST(Cli, OutIsWrittenAtomicallyAndMatchesStdout) {
  TempDir dir;
  auto a = run_cpumodel("baseline --format libvirt " + kPair);
  auto b = run_cpumodel("baseline --format libvirt --out " + dir.file("cpu.xml") + " " + kPair);
  ASSERT_EQ(b.exit_code, 0) << b.err;
  std::ifstream in(dir.file("cpu.xml"));
  std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(file, a.out);
  for (const auto& e : std::filesystem::directory_iterator(dir.path))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << "left a temporary file";
}

TEST(Cli, LibvirtOutputIsAcceptedByVirsh) {
  if (!test::have_program("virsh")) GTEST_SKIP() << "virsh (libvirt-clients) is not installed";
  TempDir dir;
  auto r = run_cpumodel("baseline --format libvirt --out " + dir.file("cpu.xml") + " " + kPair);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(dir.file("cpu.xml"));
  std::string xml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(xml.find("<cpu mode='custom' match='exact'>"), std::string::npos) << xml;
  EXPECT_NE(xml.find("<model fallback='forbid'>Haswell"), std::string::npos) << xml;
  EXPECT_NE(xml.find("<vendor>Intel</vendor>"), std::string::npos) << xml;
  // libvirt parses it (unknown model or feature names would be an error) and expands it to the
  // same feature set we list. cpu-baseline reads host CPUs, so the guest-only attributes go.
  std::string host_form = std::regex_replace(xml, std::regex(" mode='custom' match='exact'| fallback='forbid'"), "");
  host_form = std::regex_replace(host_form, std::regex("<cpu>"), "<cpu>\n  <arch>x86_64</arch>");
  std::ofstream(dir.file("host.xml")) << host_form;
  std::string cmd = "virsh -c test:///default cpu-baseline --features " + dir.file("host.xml") + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ASSERT_EQ(::pclose(p), 0) << out;
  FeatureSet lv;
  std::regex re("<feature policy='require' name='([^']+)'/>");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), re); it != std::sregex_iterator(); ++it)
    if (auto id = find_feature((*it)[1].str())) lv.add(*id);
  auto j = run_cpumodel("baseline --format qemu --expand " + kPair);
  FeatureSet ours;
  std::string s = j.out.substr(0, j.out.find('\n'));
  for (size_t pos = s.find(",+"); pos != std::string::npos; pos = s.find(",+", pos + 1)) {
    size_t end = s.find(',', pos + 2);
    if (auto id = find_feature(s.substr(pos + 2, end == std::string::npos ? std::string::npos : end - pos - 2)))
      ours.add(*id);
  }
  FeatureSet known;
  for (FeatureId id : ours.ids())
    if (!libvirt_feature_name(id).empty()) known.add(id);
  EXPECT_EQ(lv, known) << "libvirt only: " << testing::PrintToString((lv - known).names())
                       << " ours only: " << testing::PrintToString((known - lv).names());
}

TEST(Cli, FirecrackerTemplateShape) {
  auto r = run_cpumodel("baseline --format firecracker " + kPair);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"cpuid_modifiers\""), std::string::npos);
  EXPECT_NE(r.out.find("\"msr_modifiers\""), std::string::npos);
  // leaf 7 subleaf 0 is indexed (flags 1); bitmaps are 0b + 32 characters of 0/1/x.
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\"leaf\": \"0x7\",\\s*\"subleaf\": \"0x0\",\\s*\"flags\": 1")))
      << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\"bitmap\": \"0b[01x]{32}\""))) << r.out;
  EXPECT_FALSE(std::regex_search(r.out, std::regex("\"bitmap\": \"0b[01x]{33,63}\""))) << r.out;
}

TEST(Cli, ExplainAndAdd) {
  auto r = run_cpumodel("baseline --explain --add " + dump("Xeon-E5-2609-v3") + " " + kPair);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("rule: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Broadwell"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("joins:"), std::string::npos) << r.out;
}

TEST(Cli, MigrateCheckExitCodes) {
  std::string v3 = dump("Xeon-E5-2650-v3"), v4 = dump("Xeon-E5-2650-v4");
  auto ok = run_cpumodel("migrate-check --cpu Haswell-noTSX --path " + v3 + "," + v4);
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  auto trap = run_cpumodel("migrate-check --cpu host --path " + v4 + "," + v3 + " --json");
  EXPECT_EQ(trap.exit_code, 1) << trap.out << trap.err;
  EXPECT_NE(trap.out.find("\"ok\": false"), std::string::npos) << trap.out;
  expect_one_line_error(run_cpumodel("migrate-check --cpu Haswell --path " + v3), 2, "at least two hosts");
  expect_one_line_error(run_cpumodel("migrate-check --cpu Haswel --path " + v3 + "," + v4), 2, "Haswel");
}

TEST(Cli, MigrateCheckPathFromABundle) {
  TempDir dir;
  ASSERT_EQ(run_cpumodel("import --bundle " + dir.file("c.pb") + " " + kPair).exit_code, 0);
  auto r = run_cpumodel("migrate-check --cpu host --path " + dir.file("c.pb") + "#Xeon-E5-2650-v4," + dir.file("c.pb") +
                        "#Xeon-E5-2650-v3");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  auto all = run_cpumodel("migrate-check --cpu Haswell-noTSX --path " + dir.file("c.pb"));
  EXPECT_EQ(all.exit_code, 0) << all.out << all.err;
}

}  // namespace
}  // namespace cpumodel
