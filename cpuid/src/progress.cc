#include "cpumodel/cpuid/progress.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace cpumodel {
namespace {

constexpr auto kRedraw = std::chrono::milliseconds(100);

bool progress_allowed() {
  const char* env = std::getenv("CPUMODEL_PROGRESS");
  return !(env && std::strcmp(env, "0") == 0);
}

// Bytes as the largest unit that keeps the number >= 1 (binary units, as `free -h`).
std::string amount(double bytes, const char** unit_out, double* scale_out) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  double scale = 1;
  while (u < 4 && bytes >= scale * 1024) scale *= 1024, ++u;
  *unit_out = kUnits[u];
  *scale_out = scale;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f" : "%.1f", bytes / scale);
  return buf;
}

void write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return;  // progress is best effort: never an error
    off += static_cast<size_t>(n);
  }
}

}  // namespace

Progress::Progress(std::string what, uint64_t total)
    : Progress(std::move(what), total, STDERR_FILENO, std::chrono::milliseconds(500)) {
  enabled_ = enabled_ && ::isatty(STDERR_FILENO) == 1;
}

Progress::Progress(std::string what, uint64_t total, int fd, Clock::duration delay)
    : what_(std::move(what)), total_(total), fd_(fd), start_(Clock::now()), next_(start_ + delay),
      enabled_(progress_allowed() && total > 0) {}

Progress::~Progress() {
  if (drawn_) write_all(fd_, "\r\033[K");
}

void Progress::update(uint64_t done) {
  if (!enabled_) return;
  Clock::time_point now = Clock::now();
  if (now < next_) return;
  next_ = now + kRedraw;
  double seconds = std::chrono::duration<double>(now - start_).count();
  write_all(fd_, "\r" + line(what_, done, total_, seconds) + "\033[K");
  drawn_ = true;
}

std::string Progress::line(const std::string& what, uint64_t done, uint64_t total, double seconds) {
  if (done > total) done = total;
  const char* unit;
  double scale;
  std::string of = amount(static_cast<double>(total), &unit, &scale);
  char buf[160];
  double pct = total ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 100.0;
  std::snprintf(buf, sizeof buf, "cpumodel: %s  %.1f / %s %s  %3.0f%%", what.c_str(),
                static_cast<double>(done) / scale, of.c_str(), unit, pct);
  std::string s = buf;
  if (seconds > 0 && done > 0) {
    std::snprintf(buf, sizeof buf, "  %.0f MB/s", static_cast<double>(done) / seconds / 1e6);
    s += buf;
  }
  return s;
}

}  // namespace cpumodel
