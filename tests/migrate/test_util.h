// Helpers for the migrate tests: real dumps, the real catalog, hand-made hosts and models, and
// running the built cpumodel binary.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cpumodel/cpuid/profile.h"
#include "cpumodel/migrate/baseline.h"
#include "cpumodel/models/catalog.h"

namespace cpumodel::test {

inline std::string dumps_dir() { return std::string(CPUMODEL_SHARED_DIR) + "/data/cpuid-dumps"; }
// "Xeon-E5-2650-v3" -> .../x86_64-cpuid-Xeon-E5-2650-v3.xml
inline std::string dump(const std::string& stem) { return dumps_dir() + "/x86_64-cpuid-" + stem + ".xml"; }

inline HostProfile load_dump(const std::string& stem) {
  auto p = load_profile(dump(stem));
  if (!p) ADD_FAILURE() << p.error().message;
  return p ? *p : HostProfile{};
}

inline const Catalog& catalog() {
  static const Catalog c = [] {
    auto r = Catalog::load_default();
    if (!r) ADD_FAILURE() << r.error().message;
    return r ? *r : Catalog{};
  }();
  return c;
}

inline FeatureSet set_of(std::initializer_list<const char*> names) {
  FeatureSet s;
  for (const char* n : names) {
    auto id = find_feature(n);
    if (!id) ADD_FAILURE() << "unknown feature " << n;
    else s.add(*id);
  }
  return s;
}

inline FeatureId id_of(const char* name) {
  auto id = find_feature(name);
  if (!id) ADD_FAILURE() << "unknown feature " << name;
  return id ? *id : FeatureId{0};
}

inline HostSummary host(const std::string& name, FeatureSet f, const std::string& vendor = "GenuineIntel") {
  HostSummary h;
  h.name = name;
  h.vendor = vendor;
  h.family = 6;
  h.model = 0x3f;
  h.features = f;
  h.from_kvm = true;
  h.phys_bits = 46;
  h.xcr0 = 0x7;
  h.xsave_size = 832;
  h.xsave_end[2] = 832;
  h.level = 0xd;
  h.xlevel = 0x80000008;
  return h;
}

inline ModelEntry model(const std::string& base, unsigned version, unsigned generation, FeatureSet f,
                        const std::string& vendor = "GenuineIntel") {
  ModelEntry m;
  m.base_name = base;
  m.version = version;
  m.name = base + "-v" + std::to_string(version);
  m.generation = generation;
  m.definition.model = m.name;
  m.definition.vendor = vendor;
  m.definition.features = f;
  return m;
}

struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

// Runs the cpumodel binary with `args` (shell words, already quoted as needed).
inline RunResult run_cpumodel(const std::string& args) {
  auto tmp = std::filesystem::temp_directory_path() / ("cpumodel-mig-" + std::to_string(::getpid()) + ".err");
  std::string cmd = std::string(CPUMODEL_BINARY) + " " + args + " 2>" + tmp.string();
  RunResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream e(tmp);
  std::stringstream ss;
  ss << e.rdbuf();
  r.err = ss.str();
  std::filesystem::remove(tmp);
  return r;
}

inline bool have_program(const char* name) {
  return std::system((std::string("command -v ") + name + " >/dev/null 2>&1").c_str()) == 0;
}

// A scratch directory removed at the end of the test.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/cpumodel-migrate-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

}  // namespace cpumodel::test
