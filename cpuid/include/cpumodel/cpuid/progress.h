// Progress of long work, for a person at a terminal: one line on stderr, redrawn in place
// ("cpumodel: writing guest memory  1.2 / 4.0 GiB  30%  610 MB/s"), and erased when the work ends.
// Silent unless stderr is a terminal (so logs, pipes and tests see nothing) and the work has gone
// on for half a second; CPUMODEL_PROGRESS=0 turns it off.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace cpumodel {

class Progress {
 public:
  using Clock = std::chrono::steady_clock;
  // `total` in bytes. Draws on stderr when it is a terminal.
  Progress(std::string what, uint64_t total);
  // For tests: draws on `fd` whatever it is, after `delay`.
  Progress(std::string what, uint64_t total, int fd, Clock::duration delay);
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  ~Progress();  // erases the line, if one was drawn

  // `done` bytes of `total` so far. Cheap when nothing is to be drawn (a clock read).
  void update(uint64_t done);
  bool drawn() const { return drawn_; }

  // The line for `done` of `total` after `seconds` (no "\r"); exposed for tests.
  static std::string line(const std::string& what, uint64_t done, uint64_t total, double seconds);

 private:
  std::string what_;
  uint64_t total_;
  int fd_;
  Clock::time_point start_, next_;
  bool enabled_, drawn_ = false;
};

}  // namespace cpumodel
