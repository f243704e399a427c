// Benchmark (prints figures, asserts nothing): import + decode every dump in
// ../shared/data/cpuid-dumps in one process, then time the whole `cpumodel decode FILE...` process.
// Usage: bench_decode [DUMPS_DIR] [CPUMODEL_BINARY]
#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <string>
#include <vector>

#include "cpumodel/cpuid/decode.h"
#include "cpumodel/cpuid/profile.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }
double cpu_ms() {  // CPU time of this process: meaningful even when the machine is loaded
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

std::vector<std::string> dumps(const std::string& dir) {
  std::vector<std::string> out;
  for (const std::string& d : {dir, dir + "/instlatx64"}) {
    DIR* h = ::opendir(d.c_str());
    if (!h) continue;
    while (dirent* e = ::readdir(h)) {
      std::string n = e->d_name;
      if (n.ends_with(".xml") || n.ends_with(".txt")) out.push_back(d + "/" + n);
    }
    ::closedir(h);
  }
  std::sort(out.begin(), out.end());
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Timing {
  double wall_ms = -1, cpu_ms = -1;  // cpu: user + system of the child
};

// One `cpumodel decode FILE...` run, output to /dev/null; wall_ms < 0 on failure.
Timing time_cli(const std::string& binary, const std::vector<std::string>& files) {
  std::vector<std::string> args = {binary, "decode"};
  args.insert(args.end(), files.begin(), files.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  auto t0 = Clock::now();
  pid_t pid;
  int rc = posix_spawn(&pid, binary.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return {};
  int st = 0;
  rusage ru{};
  ::wait4(pid, &st, 0, &ru);
  Timing t;
  t.wall_ms = ms_since(t0);
  t.cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) t.wall_ms = -1;
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : CPUMODEL_SHARED_DIR "/data/cpuid-dumps";
  std::string binary = argc > 2 ? argv[2] : CPUMODEL_BINARY;
  auto files = dumps(dir);
  if (files.empty()) {
    std::fprintf(stderr, "bench_decode: no dumps in %s\n", dir.c_str());
    return 2;
  }
  constexpr int kRounds = 20;
  std::vector<double> read_ms, parse_ms, decode_ms, parse_cpu, decode_cpu;
  size_t features = 0, entries = 0;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::string> texts;
    auto t0 = Clock::now();
    for (const auto& f : files) texts.push_back(*cpumodel::read_file(f));
    read_ms.push_back(ms_since(t0));
    std::vector<cpumodel::HostProfile> profiles;
    t0 = Clock::now();
    double c0 = cpu_ms();
    for (size_t i = 0; i < files.size(); ++i) {
      auto p = cpumodel::parse_profile(texts[i], files[i]);
      if (!p) {
        std::fprintf(stderr, "bench_decode: %s\n", p.error().message.c_str());
        return 2;
      }
      profiles.push_back(std::move(*p));
    }
    parse_ms.push_back(ms_since(t0));
    parse_cpu.push_back(cpu_ms() - c0);
    t0 = Clock::now();
    c0 = cpu_ms();
    features = entries = 0;
    for (const auto& p : profiles) {
      cpumodel::DecodedCpu d = cpumodel::decode_cpu(p.cpuid, p.msrs);
      features += d.features.count();
      entries += p.cpuid.size();
    }
    decode_ms.push_back(ms_since(t0));
    decode_cpu.push_back(cpu_ms() - c0);
  }
  std::printf("dumps                         %zu (%zu CPUID entries, %zu named features set)\n", files.size(), entries,
              features);
  std::printf("in process, median of %d rounds        wall        cpu\n", kRounds);
  std::printf("  read files                  %8.3f ms\n", median(read_ms));
  std::printf("  sniff + parse               %8.3f ms %8.3f ms\n", median(parse_ms), median(parse_cpu));
  std::printf("  decode                      %8.3f ms %8.3f ms\n", median(decode_ms), median(decode_cpu));
  std::printf("  per dump (parse + decode)   %8.3f ms %8.3f ms\n", (median(parse_ms) + median(decode_ms)) / files.size(),
              (median(parse_cpu) + median(decode_cpu)) / files.size());
  std::vector<double> wall, cpu;
  for (int i = 0; i < 10; ++i) {
    Timing t = time_cli(binary, files);
    if (t.wall_ms < 0) {
      std::printf("whole process: `%s decode` failed\n", binary.c_str());
      return 0;
    }
    wall.push_back(t.wall_ms);
    cpu.push_back(t.cpu_ms);
  }
  std::printf("whole process `cpumodel decode` of all %zu files (text output), 10 runs:\n", files.size());
  std::printf("  wall median                 %8.3f ms\n", median(wall));
  std::printf("  wall min                    %8.3f ms\n", *std::min_element(wall.begin(), wall.end()));
  std::printf("  cpu (user+sys) median       %8.3f ms\n", median(cpu));
  return 0;
}
