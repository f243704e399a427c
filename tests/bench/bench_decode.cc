// Benchmark (prints figures, asserts nothing): import + decode every dump in
// ../shared/data/cpuid-dumps in one process, then time the whole `cpumodel decode FILE...` process.
// Usage: bench_decode [DUMPS_DIR] [CPUMODEL_BINARY]
#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "cpumodel/cpuid/decode.h"
#include "cpumodel/cpuid/profile.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

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

// Wall time of one `cpumodel decode FILE...` run, output to /dev/null; <0 on failure.
double time_cli(const std::string& binary, const std::vector<std::string>& files) {
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
  if (rc != 0) return -1;
  int st = 0;
  ::waitpid(pid, &st, 0);
  double ms = ms_since(t0);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? ms : -1;
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
  std::vector<double> read_ms, parse_ms, decode_ms;
  size_t features = 0, entries = 0;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::string> texts;
    auto t0 = Clock::now();
    for (const auto& f : files) texts.push_back(*cpumodel::read_file(f));
    read_ms.push_back(ms_since(t0));
    std::vector<cpumodel::HostProfile> profiles;
    t0 = Clock::now();
    for (size_t i = 0; i < files.size(); ++i) {
      auto p = cpumodel::parse_profile(texts[i], files[i]);
      if (!p) {
        std::fprintf(stderr, "bench_decode: %s\n", p.error().message.c_str());
        return 2;
      }
      profiles.push_back(std::move(*p));
    }
    parse_ms.push_back(ms_since(t0));
    t0 = Clock::now();
    features = entries = 0;
    for (const auto& p : profiles) {
      cpumodel::DecodedCpu d = cpumodel::decode_cpu(p.cpuid, p.msrs);
      features += d.features.count();
      entries += p.cpuid.size();
    }
    decode_ms.push_back(ms_since(t0));
  }
  std::printf("dumps                         %zu (%zu CPUID entries, %zu named features set)\n", files.size(), entries,
              features);
  std::printf("in process, median of %d rounds:\n", kRounds);
  std::printf("  read files                  %8.3f ms\n", median(read_ms));
  std::printf("  sniff + parse               %8.3f ms\n", median(parse_ms));
  std::printf("  decode                      %8.3f ms\n", median(decode_ms));
  std::printf("  per dump (parse + decode)   %8.3f ms\n", (median(parse_ms) + median(decode_ms)) / files.size());
  std::vector<double> cli;
  for (int i = 0; i < 10; ++i) {
    double ms = time_cli(binary, files);
    if (ms < 0) {
      std::printf("whole process: `%s decode` failed\n", binary.c_str());
      return 0;
    }
    cli.push_back(ms);
  }
  std::printf("whole process `cpumodel decode` of all %zu files, wall, 10 runs:\n", files.size());
  std::printf("  median                      %8.3f ms\n", median(cli));
  std::printf("  min                         %8.3f ms\n", *std::min_element(cli.begin(), cli.end()));
  return 0;
}
