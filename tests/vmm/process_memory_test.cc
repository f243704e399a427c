// release_startup_code on this very test process: the code and clean read-only pages of the
// executable leave RSS, the process goes on working, and written (relocated) data is kept.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "cpumodel/vmm/process_memory.h"

namespace cpumodel::vmm {
namespace {

long status_kib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + field.size());
  return -1;
}

// A table that start-up relocation writes (pointers in a PIE): it must survive.
const char* const kWords[] = {"alpha", "beta", "gamma"};

TEST(ProcessMemory, StartupCodeLeavesRssAndTheProcessGoesOn) {
  long before = status_kib("RssFile:");
  ASSERT_GT(before, 0);
  uint64_t advised = release_startup_code();
  long after = status_kib("RssFile:");
  EXPECT_GT(advised, 0u) << "the test executable has code mappings";
  EXPECT_LT(after, before) << "RssFile " << before << " -> " << after << " KiB";
  std::printf("RssFile %ld -> %ld KiB (%llu KiB of mappings advised)\n", before, after,
              static_cast<unsigned long long>(advised >> 10));
  // Code and data still work: relocated pointers, the C++ runtime, the heap.
  EXPECT_EQ(std::string(kWords[1]) + kWords[2], "betagamma");
  std::string big(1 << 20, 'x');
  EXPECT_EQ(big.find('y'), std::string::npos);
  EXPECT_GT(release_startup_code(), 0u) << "again: harmless";
}

}  // namespace
}  // namespace cpumodel::vmm
