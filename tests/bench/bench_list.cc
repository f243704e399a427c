// Benchmark (prints figures, asserts nothing): `cpumodel list --host PROFILE` for every model.
// In process: catalog load, then every model judged against the profile (and against every
// dump). Whole process: the median wall time of running the real command, output to /dev/null.
// Usage: bench_list [PROFILE] [CPUMODEL_BINARY] [RUNS]
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cpumodel/models/host_check.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

double run_once(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  auto t = Clock::now();
  pid_t pid = 0;
  if (posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ) != 0) return -1;
  int status = 0;
  waitpid(pid, &status, 0);
  double ms = ms_since(t);
  posix_spawn_file_actions_destroy(&fa);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? ms : -1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cpumodel;
  std::string dumps = std::string(CPUMODEL_SHARED_DIR) + "/data/cpuid-dumps";
  std::string profile = argc > 1 ? argv[1] : dumps + "/x86_64-cpuid-Xeon-E5-2650-v3.xml";
  std::string binary = argc > 2 ? argv[2] : CPUMODEL_BINARY;
  int runs = argc > 3 ? std::atoi(argv[3]) : 20;

  auto t0 = Clock::now();
  auto cat = Catalog::load_default();
  double load_ms = ms_since(t0);
  if (!cat) {
    std::fprintf(stderr, "bench_list: %s\n", cat.error().message.c_str());
    return 2;
  }
  // The same files parsed from YAML (what every run cost before the compiled catalog).
  ::setenv("CPUMODEL_COMPILED_CATALOG", "off", 1);
  auto t_yaml = Clock::now();
  auto parsed = Catalog::load_default();
  double yaml_ms = ms_since(t_yaml);
  ::unsetenv("CPUMODEL_COMPILED_CATALOG");
  auto host = load_profile(profile);
  if (!host) {
    std::fprintf(stderr, "bench_list: %s\n", host.error().message.c_str());
    return 2;
  }
  auto t1 = Clock::now();
  size_t runnable = 0;
  for (const auto& e : cat->entries()) runnable += unavailable_features(e.definition, *host).empty();
  double judge_ms = ms_since(t1);

  std::vector<HostProfile> hosts;
  for (const auto& f : std::filesystem::recursive_directory_iterator(dumps))
    if (f.path().extension() == ".xml")
      if (auto h = load_profile(f.path().string())) hosts.push_back(std::move(*h));
  auto t2 = Clock::now();
  size_t judged = 0;
  for (const auto& h : hosts)
    for (const auto& e : cat->entries()) judged += unavailable_features(e.definition, h).empty() ? 1 : 1;
  double all_ms = ms_since(t2);

  std::vector<double> wall, wall_yaml;
  for (int i = 0; i < runs; ++i) {
    double ms = run_once({binary, "list", "--host", profile});
    if (ms >= 0) wall.push_back(ms);
  }
  ::setenv("CPUMODEL_COMPILED_CATALOG", "off", 1);
  for (int i = 0; i < runs; ++i) {
    double ms = run_once({binary, "list", "--host", profile});
    if (ms >= 0) wall_yaml.push_back(ms);
  }
  ::unsetenv("CPUMODEL_COMPILED_CATALOG");
  std::sort(wall.begin(), wall.end());
  std::sort(wall_yaml.begin(), wall_yaml.end());
  std::printf("catalog: %zu models from %zu files, loaded in %.2f ms (%s); parsing the YAML instead: %.2f ms\n",
              cat->entries().size(), cat->files().size(), load_ms,
              cat->from_compiled() ? "compiled at build time" : "parsed from YAML", parsed ? yaml_ms : -1.0);
  std::printf("list --host %s in process: %zu models judged in %.3f ms (%zu runnable)\n",
              host->name.c_str(), cat->entries().size(), judge_ms, runnable);
  std::printf("every model x %zu libvirt dumps: %zu judgements in %.2f ms\n", hosts.size(), judged, all_ms);
  if (wall.empty()) {
    std::printf("whole process: %s did not run\n", binary.c_str());
    return 1;
  }
  std::printf("whole process `cpumodel list --host PROFILE` (%zu runs): min %.1f ms, median %.1f ms, max %.1f ms "
              "(target < 30 ms)\n", wall.size(), wall.front(), wall[wall.size() / 2], wall.back());
  if (!wall_yaml.empty())
    std::printf("  the same with CPUMODEL_COMPILED_CATALOG=off (YAML parsed each run): min %.1f ms, median %.1f ms\n",
                wall_yaml.front(), wall_yaml[wall_yaml.size() / 2]);
  return 0;
}
