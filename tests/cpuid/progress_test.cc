// Progress lines: drawn in place only where asked (a terminal, or the test's pipe), erased at the end.
#include "cpumodel/cpuid/progress.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace cpumodel {
namespace {

std::string drain(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

TEST(Progress, LineSaysWhatHowMuchAndHowFast) {
  EXPECT_EQ(Progress::line("writing guest memory", 1ull << 30, 4ull << 30, 2.0),
            "cpumodel: writing guest memory  1.0 / 4.0 GiB   25%  537 MB/s");
  EXPECT_EQ(Progress::line("x", 0, 512, 0.0), "cpumodel: x  0.0 / 512 B    0%");
  EXPECT_EQ(Progress::line("x", 900, 512, 1.0).find("100%") != std::string::npos, true);  // clamped
}

TEST(Progress, DrawsInPlaceAndErasesTheLine) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_NONBLOCK), 0);
  {
    Progress progress("writing guest memory", 1000, p[1], std::chrono::milliseconds(0));
    progress.update(500);
    EXPECT_TRUE(progress.drawn());
    progress.update(600);  // within 100 ms of the last draw: not redrawn
  }
  ::close(p[1]);
  std::string out = drain(p[0]);
  ::close(p[0]);
  EXPECT_EQ(out.rfind("\rcpumodel: writing guest memory  500.0 / 1000 B   50%", 0), 0u) << out;
  EXPECT_EQ(out.find("600.0"), std::string::npos) << out;
  EXPECT_EQ(out.substr(out.size() - 4), "\r\033[K") << "the line is erased at the end";
}

TEST(Progress, SilentBeforeItsDelayAndWhenTurnedOff) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_NONBLOCK), 0);
  {
    Progress slow("x", 1000, p[1], std::chrono::hours(1));
    slow.update(500);
    EXPECT_FALSE(slow.drawn());
    ::setenv("CPUMODEL_PROGRESS", "0", 1);
    Progress off("x", 1000, p[1], std::chrono::milliseconds(0));
    off.update(500);
    EXPECT_FALSE(off.drawn());
    ::unsetenv("CPUMODEL_PROGRESS");
    // stderr here is ctest's pipe or a file, not a terminal: the default constructor stays silent.
    if (!::isatty(STDERR_FILENO)) {
      Progress term("x", 1000);
      term.update(500);
      EXPECT_FALSE(term.drawn());
    }
  }
  ::close(p[1]);
  EXPECT_EQ(drain(p[0]), "");
  ::close(p[0]);
}

}  // namespace
}  // namespace cpumodel
