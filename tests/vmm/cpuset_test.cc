// CPU lists and the --pin grammar; CPUs that do not exist or are not allowed are exit-2 errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include "cpumodel/vmm/cpuset.h"

namespace cpumodel::vmm {
namespace {

TEST(CpuSet, ParsesAndFormatsCpulists) {
  auto s = CpuSet::parse("0-3,6,8-9");
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->count(), 7u);
  EXPECT_TRUE(s->has(6));
  EXPECT_FALSE(s->has(7));
  EXPECT_EQ(s->format(), "0-3,6,8-9");
  EXPECT_EQ(CpuSet::parse("5,4,3")->format(), "3-5");
}

TEST(CpuSet, ErrorsNameTheColumn) {
  auto bad = CpuSet::parse("0-3,x", "--affinity");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().exit_code, kExitUsage);
  EXPECT_EQ(bad.error().message, "--affinity '0-3,x': expected a CPU number at column 5");
  EXPECT_FALSE(CpuSet::parse("3-1").ok());
  EXPECT_FALSE(CpuSet::parse("").ok());
  EXPECT_FALSE(CpuSet::parse("1,").ok());
  EXPECT_FALSE(CpuSet::parse("5000").ok());
}

TEST(PinMap, Parses) {
  auto p = parse_pin_map("0:2,1:3,2:0-1,0:5");
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_EQ(p->size(), 3u);
  EXPECT_EQ(p->at(0).format(), "2,5");
  EXPECT_EQ(p->at(1).format(), "3");
  EXPECT_EQ(p->at(2).format(), "0-1");
}

TEST(PinMap, Errors) {
  for (const char* bad : {"0", "0:", ":1", "0:1,", "0;1", "a:1", "0:1-"}) {
    auto p = parse_pin_map(bad);
    EXPECT_FALSE(p.ok()) << bad;
    if (!p.ok()) {
      EXPECT_EQ(p.error().exit_code, kExitUsage);
    }
  }
}

TEST(PinMap, ChecksVcpusAndHostCpus) {
  CpuSet online = online_cpus();
  ASSERT_FALSE(online.empty());
  unsigned last = online.cpus().back();
  auto ok = parse_pin_map("0:" + std::to_string(last));
  EXPECT_TRUE(check_pin_map(*ok, 1).ok());
  EXPECT_FALSE(check_pin_map(*ok, 0).ok());
  auto too_many = parse_pin_map("3:0");
  auto st = check_pin_map(*too_many, 2);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().exit_code, kExitUsage);
  EXPECT_NE(st.error().message.find("no vCPU 3"), std::string::npos) << st.error().message;
  auto absent = parse_pin_map("0:" + std::to_string(last + 1));
  st = check_pin_map(*absent, 1);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("does not exist"), std::string::npos) << st.error().message;
}

TEST(Affinity, OutsideTheAllowedSetIsRefused) {
  CpuSet online = online_cpus();
  if (online.count() < 2) GTEST_SKIP() << "needs 2 online CPUs";
  CpuSet saved = current_affinity();
  CpuSet first;
  first.add(online.cpus()[0]);
  ASSERT_TRUE(apply_affinity(first).ok());  // this thread only: threads started later inherit it
  CpuSet second;
  second.add(online.cpus()[1]);
  auto st = check_cpus(second, "--pin 0:" + second.format());
  ASSERT_TRUE(pin_current_thread(saved).ok());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().exit_code, kExitUsage);
  EXPECT_NE(st.error().message.find("outside the CPUs this process may use"), std::string::npos)
      << st.error().message;
}

TEST(LastCpu, ReadsStatField39) {
  int cpu = last_cpu_of(static_cast<int>(::gettid()));
  EXPECT_GE(cpu, 0);
  EXPECT_TRUE(online_cpus().has(static_cast<unsigned>(cpu)));
  EXPECT_EQ(last_cpu_of(0x7fffffff), -1);
}

}  // namespace
}  // namespace cpumodel::vmm
