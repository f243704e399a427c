#include <gtest/gtest.h>

#include "cpumodel/cpuid/smp.h"
#include "cpumodel/cpuid/spec.h"

namespace cpumodel {
namespace {

TEST(Spec, ParsesAllForms) {
  auto s = parse_spec("Haswell,+aes,-avx,x2apic=off,pmu,model-id=My CPU");
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->model, "Haswell");
  ASSERT_EQ(s->edits.size(), 4u);
  EXPECT_EQ(s->edits[0].op, FeatureEdit::Op::kPlus);
  EXPECT_EQ(s->edits[1].column, 14u);
  EXPECT_EQ(s->edits[2].op, FeatureEdit::Op::kOff);
  EXPECT_EQ(s->edits[3].op, FeatureEdit::Op::kOn);
  ASSERT_EQ(s->properties.size(), 1u);
  EXPECT_EQ(s->properties[0].value, "My CPU");
}

TEST(Spec, LegacyFormWinsAndWarns) {
  auto s = parse_spec("Haswell,x2apic=off,+x2apic");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->warnings.size(), 1u);
  auto r = resolve_edits(*s);
  ASSERT_EQ(r.enable.size(), 1u);
  EXPECT_EQ(r.enable[0], "x2apic");
  auto m = resolve_edits(*parse_spec("Haswell,-avx,+avx,avx=on"));
  ASSERT_EQ(m.disable.size(), 1u);  // minus is applied last
}

TEST(Spec, ErrorsNameTheColumn) {
  auto s = parse_spec("Haswell,,+aes");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("column 9"), std::string::npos) << s.error().message;
  EXPECT_FALSE(parse_spec("").ok());
  EXPECT_FALSE(parse_spec("+aes").ok());
  EXPECT_FALSE(parse_spec("Haswell,+").ok());
  EXPECT_FALSE(parse_spec("Haswell,avx=").ok());
}

TEST(Spec, RoundTrips) {
  for (const char* text : {"Haswell", "EPYC,+aes,-avx", "qemu64,x2apic=off,phys-bits=40"}) {
    auto a = parse_spec(text);
    ASSERT_TRUE(a.ok());
    auto b = parse_spec(format_spec(*a));
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(format_spec(*a), format_spec(*b));
  }
}

struct SmpCase {
  const char* text;
  SmpConfig want;
};

TEST(Smp, QemuRulesForOmittedValues) {
  const SmpCase cases[] = {
      {"8", {8, 8, 1, 1, 8, 1}},
      {"8,sockets=2", {8, 8, 2, 1, 4, 1}},
      {"8,sockets=2,cores=2,threads=2", {8, 8, 2, 1, 2, 2}},
      {"4,maxcpus=8", {4, 8, 1, 1, 8, 1}},
      {"sockets=2,cores=3", {6, 6, 2, 1, 3, 1}},
      {"12,cores=3", {12, 12, 4, 1, 3, 1}},
      {"8,sockets=1,cores=4", {8, 8, 1, 1, 4, 2}},
      {"16,sockets=2,dies=2,cores=2,threads=2", {16, 16, 2, 2, 2, 2}},
  };
  for (const auto& c : cases) {
    auto r = parse_smp(c.text);
    ASSERT_TRUE(r.ok()) << c.text << ": " << r.error().message;
    EXPECT_EQ(*r, c.want) << c.text << " -> " << format_smp(*r);
    auto again = parse_smp(format_smp(*r));
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, *r);
  }
}

TEST(Smp, UserErrors) {
  for (const char* bad : {"", "0", "8,sockets=3", "9,maxcpus=8", "8,cores=x", "8,bogus=1", "8,,", "8,sockets=0",
                          "4,cores=2,cores=2", "8,4"}) {
    auto r = parse_smp(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().exit_code, kExitUsage);
    }
  }
  auto r = parse_smp("8,cores=x");
  EXPECT_NE(r.error().message.find("column 9"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace cpumodel
