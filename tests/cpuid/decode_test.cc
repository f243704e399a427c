// decode: signature arithmetic, brand, unknown bits, hypervisor, and golden decodes of real dumps
// (tests/cpuid/golden/decode_golden.txt says where each fact comes from).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <sys/stat.h>

#include "cpumodel/cpuid/decode.h"
#include "cpumodel/cpuid/profile.h"

namespace cpumodel {
namespace {

const std::string kDumps = std::string(CPUMODEL_SHARED_DIR) + "/data/cpuid-dumps";
const std::string kGolden = std::string(CPUMODEL_SOURCE_DATA_DIR) + "/../tests/cpuid/golden/decode_golden.txt";

bool exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

// Signatures and their display values as Intel SDM vol. 2A (CPUID, "Processor Signature") and the
// AMD APM vol. 3 (CPUID Fn0000_0001_EAX) define them; Linux x86_model() for family 7.
TEST(Signature, ExtendedFieldsDoneRight) {
  struct Case {
    uint32_t eax;
    unsigned family, model, stepping;
  } cases[] = {
      {0x000306f2, 6, 0x3f, 2},    // Haswell-EP: extended model 3 counts for family 6
      {0x00050654, 6, 0x55, 4},    // Skylake-SP
      {0x00000f29, 0xf, 2, 9},     // Pentium 4 Northwood: family F, no extended family
      {0x00020f32, 0xf, 0x23, 2},  // Athlon 64 X2: family F uses the extended model
      {0x00800f12, 0x17, 1, 2},    // Zen 1: family F + extended 8
      {0x00a10f11, 0x19, 0x11, 1}, // Zen 4 Genoa: model 1 + extended 1
      {0x00b00f21, 0x1a, 2, 1},    // Zen 5 Turin
      {0x000307b2, 7, 0x3b, 2},    // Zhaoxin KX-6000: family 7 >= 6 uses the extended model
      {0x00010543, 5, 4, 3},       // family 5: an extended model field is ignored
      {0x00000633, 6, 3, 3},       // Pentium II
  };
  for (const auto& c : cases) {
    CpuSignature s = decode_signature(c.eax);
    EXPECT_EQ(s.family, c.family) << std::hex << c.eax;
    EXPECT_EQ(s.model, c.model) << std::hex << c.eax;
    EXPECT_EQ(s.stepping, c.stepping) << std::hex << c.eax;
    EXPECT_EQ(s.raw, c.eax);
  }
}

CpuidTable with_brand(const std::string& brand) {
  CpuidTable t;
  t.set(0x80000000, 0, {0x80000004, 0, 0, 0});
  char buf[48] = {};
  std::copy(brand.begin(), brand.end(), buf);
  for (uint32_t i = 0; i < 3; ++i) {
    CpuidRegs r;
    std::memcpy(&r.eax, buf + i * 16, 4);
    std::memcpy(&r.ebx, buf + i * 16 + 4, 4);
    std::memcpy(&r.ecx, buf + i * 16 + 8, 4);
    std::memcpy(&r.edx, buf + i * 16 + 12, 4);
    t.set(0x80000002 + i, 0, r);
  }
  return t;
}

TEST(Brand, TrimmedAtBothEndsNotInside) {
  EXPECT_EQ(brand_string(with_brand("Intel(R) Core(TM)2 Duo CPU     E6850  @ 3.00GHz")),
            "Intel(R) Core(TM)2 Duo CPU     E6850  @ 3.00GHz");
  EXPECT_EQ(brand_string(with_brand("       Intel(R) Xeon(R) CPU E5-2650 0 @ 2.00GHz")),
            "Intel(R) Xeon(R) CPU E5-2650 0 @ 2.00GHz");
  EXPECT_EQ(brand_string(with_brand("AMD EPYC 7601 32-Core Processor                ")),
            "AMD EPYC 7601 32-Core Processor");
  CpuidTable short_ext = with_brand("X");
  short_ext.set(0x80000000, 0, {0x80000001, 0, 0, 0});
  EXPECT_EQ(brand_string(short_ext), "");  // the leaves are beyond the maximum: no brand
}

TEST(Decode, UnknownBitsNamedByCoordinates) {
  CpuidTable t;
  t.set(0, 0, {1, 0x756e6547, 0x6c65746e, 0x49656e69});
  // CPUID.01H:EDX bits 10 and 20 are Reserved (Intel SDM vol. 2A, CPUID, "Feature Information
  // Returned in the EDX Register"): no dictionary can name them, so they are unknown.
  t.set(1, 0, {0x000306f2, 0, 0, (1u << 10) | (1u << 20)});
  DecodedCpu d = decode_cpu(t);
  ASSERT_EQ(d.unknown_bits.size(), 2u);
  EXPECT_EQ(d.unknown_bits[0].text, "CPUID.01H:EDX[bit 10]");
  EXPECT_EQ(d.unknown_bits[1].text, "CPUID.01H:EDX[bit 20]");
  EXPECT_EQ(d.vendor, "GenuineIntel");
}

TEST(Decode, AmdMirrorsOfLeaf1AreNotUnknown) {
  CpuidTable t;
  t.set(0, 0, {1, 0x68747541, 0x444d4163, 0x69746e65});
  t.set(0x80000000, 0, {0x80000001, 0, 0, 0});
  t.set(0x80000001, 0, {0, 0, 0, 0x1});  // bit 0 mirrors CPUID.01H:EDX.fpu (AMD APM vol. 3)
  EXPECT_TRUE(decode_cpu(t).unknown_bits.empty());
}

TEST(Decode, HypervisorLeaves) {
  CpuidTable t;
  t.set(0, 0, {1, 0x756e6547, 0x6c65746e, 0x49656e69});
  t.set(1, 0, {0x000306f2, 0, 1u << 31, 0});
  t.set(0x40000000, 0, {0x40000001, 0x4b4d564b, 0x564b4d56, 0x0000004d});  // "KVMKVMKVM\0\0\0"
  DecodedCpu d = decode_cpu(t);
  EXPECT_TRUE(d.hypervisor.flag);
  EXPECT_EQ(d.hypervisor.signature, "KVMKVMKVM");
  EXPECT_EQ(d.hypervisor.max_leaf, 0x40000001u);
}

TEST(Decode, JsonHasTheContractFields) {
  auto p = parse_profile(
      "<cpudata arch='x86'>\n"
      "<cpuid eax_in='0x0' ecx_in='0x0' eax='0x1' ebx='0x756e6547' ecx='0x6c65746e' edx='0x49656e69'/>\n"
      "<cpuid eax_in='0x1' ecx_in='0x0' eax='0x000306f2' ebx='0x0' ecx='0x0' edx='0x400'/>\n"
      "</cpudata>\n",
      "mini.xml");
  ASSERT_TRUE(p.ok()) << p.error().message;
  JsonWriter w;
  decode_to_json(decode_cpu(p->cpuid), w);
  for (const char* field : {"\"vendor\": \"GenuineIntel\"", "\"family\": 6", "\"model_number\": 63",
                            "\"stepping\": 2", "\"brand\": \"\"", "\"features\"", "\"CPUID.01H:EDX[bit 10]\""})
    EXPECT_NE(w.str().find(field), std::string::npos) << field << " in " << w.str();
}

// ---- goldens ----

struct Golden {
  std::string file;
  std::map<std::string, std::string> kv;
  size_t line = 0;
};

std::vector<Golden> read_goldens() {
  std::ifstream in(kGolden);
  std::vector<Golden> out;
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '[') {
      out.push_back({line.substr(1, line.find(']') - 1), {}, n});
      continue;
    }
    size_t eq = line.find(" = ");
    if (eq != std::string::npos && !out.empty()) out.back().kv[line.substr(0, eq)] = line.substr(eq + 3);
  }
  return out;
}

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// The dump itself, or its converted copy in data/hosts when ../shared is not there.
std::string locate(const std::string& file) {
  if (exists(kDumps + "/" + file)) return kDumps + "/" + file;
  std::string name = profile_name_from_path(file);
  for (const char* vendor : {"intel", "amd"}) {
    std::string p = std::string(CPUMODEL_SOURCE_DATA_DIR) + "/hosts/" + vendor + "/" + name + ".yaml";
    if (exists(p)) return p;
  }
  return "";
}

TEST(Golden, RealCpusDecodeAsDocumented) {
  auto goldens = read_goldens();
  ASSERT_GE(goldens.size(), 8u) << "cannot read " << kGolden;
  size_t checked = 0;
  for (const auto& g : goldens) {
    SCOPED_TRACE(g.file + " (golden line " + std::to_string(g.line) + ")");
    std::string path = locate(g.file);
    if (path.empty()) continue;
    auto p = load_profile(path);
    ASSERT_TRUE(p.ok()) << p.error().message;
    DecodedCpu d = decode_cpu(p->cpuid, p->msrs);
    ++checked;
    auto get = [&](const char* k) { return g.kv.count(k) ? g.kv.at(k) : std::string(); };
    EXPECT_EQ(d.vendor, get("vendor"));
    if (!get("signature").empty()) {
      auto s = words(get("signature"));
      ASSERT_EQ(s.size(), 3u);
      EXPECT_EQ(d.signature.family, std::stoul(s[0]));
      EXPECT_EQ(d.signature.model, std::stoul(s[1]));
      EXPECT_EQ(d.signature.stepping, std::stoul(s[2]));
    }
    if (!get("family").empty()) {
      EXPECT_EQ(d.signature.family, std::stoul(get("family")));
    }
    if (!get("model").empty()) {
      EXPECT_EQ(d.signature.model, std::stoul(get("model")));
    }
    if (g.kv.count("brand")) {
      EXPECT_EQ(d.brand, get("brand"));
    }
    for (const auto& f : words(get("present"))) {
      ASSERT_TRUE(find_feature(f).has_value()) << "the dictionary does not know '" << f << "'";
      EXPECT_TRUE(d.features.has(*find_feature(f))) << f << " should be present";
    }
    for (const auto& f : words(get("absent"))) {
      ASSERT_TRUE(find_feature(f).has_value()) << "the dictionary does not know '" << f << "'";
      EXPECT_FALSE(d.features.has(*find_feature(f))) << f << " should be absent";
    }
  }
  if (checked == 0) GTEST_SKIP() << "no dump found (neither " << kDumps << " nor data/hosts)";
  EXPECT_GE(checked, 8u);
}

}  // namespace
}  // namespace cpumodel
