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

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cpumodel;
  using namespace cpumodel::fuzz;
  const std::string file = scratch_file("fuzz.yaml");
  const std::string dir = file.substr(0, file.rfind('/'));
  FILE* f = std::fopen(file.c_str(), "wb");
  if (!f) std::abort();
  if (size) std::fwrite(data, 1, size, f);
  std::fclose(f);
  auto catalog = Catalog::load({dir});
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
