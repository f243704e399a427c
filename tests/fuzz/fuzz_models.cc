// Model YAML (data/models/*.yaml and user --models-dir): the input is one catalog file, written
// to a private temporary directory and loaded with Catalog::load. Loading must reject or accept
// without crashing; for an accepted catalog every entry resolves by name and expands.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cpumodel/models/catalog.h"
#include "fuzz_check.h"

namespace cpumodel::fuzz {
namespace {

const std::string& temp_dir() {
  static const std::string dir = [] {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/cpumodel-fuzz-models-XXXXXX";
    if (!::mkdtemp(tmpl.data())) std::abort();
    return tmpl;
  }();
  return dir;
}

struct Cleanup {
  ~Cleanup() {
    ::unlink((temp_dir() + "/fuzz.yaml").c_str());
    ::rmdir(temp_dir().c_str());
  }
};

}  // namespace
}  // namespace cpumodel::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cpumodel;
  using namespace cpumodel::fuzz;
  static Cleanup cleanup;
  std::string file = temp_dir() + "/fuzz.yaml";
  FILE* f = std::fopen(file.c_str(), "wb");
  if (!f) std::abort();
  if (size) std::fwrite(data, 1, size, f);
  std::fclose(f);
  auto catalog = Catalog::load({temp_dir()});
  if (!catalog) {
    check_one_line(catalog.error().message);
    return 0;
  }
  for (const ModelEntry& e : catalog->entries()) {
    check(catalog->find(e.name) != nullptr, "every entry is found by its name", e.name);
    if (e.kind == ModelEntry::Kind::kModel) (void)catalog->expand(e.name + ",-sse2,+avx");
    (void)catalog->versions_of(e.base_name);
  }
  (void)catalog->unknown_model_message("Haswel");
  return 0;
}
