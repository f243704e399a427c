#include "cpumodel/cpuid/table.h"

#include <gtest/gtest.h>

namespace cpumodel {
namespace {

TEST(CpuidTable, AbsentReadsAsZero) {
  CpuidTable t;
  EXPECT_TRUE(t.get(7, 0).zero());
  EXPECT_FALSE(t.has(7, 0));
}

TEST(CpuidTable, NonIndexedLeafIgnoresSubleaf) {
  CpuidTable t;
  t.set(1, 5, {1, 2, 3, 4});
  EXPECT_EQ(t.get(1, 0).ecx, 3u);
  EXPECT_EQ(t.get(1, 9).edx, 4u);
  t.set(7, 1, {9, 0, 0, 0});
  EXPECT_EQ(t.get(7, 1).eax, 9u);
  EXPECT_TRUE(t.get(7, 0).zero());
}

TEST(CpuidTable, BitsAndVendor) {
  CpuidTable t;
  t.set(0, 0, {0xd, 0x756e6547, 0x6c65746e, 0x49656e69});
  EXPECT_EQ(t.vendor(), "GenuineIntel");
  t.set_bit(7, 0, Reg::kEbx, 5, true);
  EXPECT_TRUE(t.bit(7, 0, Reg::kEbx, 5));
  t.set_bit(7, 0, Reg::kEbx, 5, false);
  EXPECT_FALSE(t.bit(7, 0, Reg::kEbx, 5));
}

TEST(CpuidTable, DiffAndMask) {
  CpuidTable a, b;
  a.set(1, 0, {1, 0, 0xff, 0});
  b.set(1, 0, {1, 0, 0x0f, 0});
  b.set(0x80000001, 0, {0, 0, 1, 0});
  auto d = a.diff(b);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].reg, Reg::kEcx);
  EXPECT_EQ(d[0].left, 0xffu);
  EXPECT_EQ(d[1].key.leaf, 0x80000001u);
  EXPECT_EQ(a.masked(b).get(1).ecx, 0x0fu);
  EXPECT_EQ(leaf_label(7), "07H");
  EXPECT_EQ(leaf_label(0x80000001), "80000001H");
}

}  // namespace
}  // namespace cpumodel
