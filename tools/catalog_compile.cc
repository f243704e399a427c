// Build-time tool: compiles the model catalog (data/models/*.yaml) into a C++ source file that
// registers it with Catalog::register_compiled, so `cpumodel` does not parse YAML on every run
// (see models/src/compiled_catalog.cc). usage: catalog_compile MODELS_DIR OUT.cc
#include <cstdio>
#include <string>

#include "cpumodel/cpuid/profile.h"
#include "cpumodel/models/catalog.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: catalog_compile MODELS_DIR OUT.cc\n");
    return 2;
  }
  auto cat = cpumodel::Catalog::load({argv[1]});
  if (!cat) {
    std::fprintf(stderr, "catalog_compile: %s\n", cat.error().message.c_str());
    return cat.error().exit_code;
  }
  auto blob = cat->compile();
  if (!blob) {
    std::fprintf(stderr, "catalog_compile: %s\n", blob.error().message.c_str());
    return blob.error().exit_code;
  }
  std::string out =
      "// Generated at build time by tools/catalog_compile from " + std::string(argv[1]) + ": do not edit.\n"
      "#include <string_view>\n\n#include \"cpumodel/models/catalog.h\"\n\nnamespace {\n\n"
      "alignas(8) const unsigned char kBlob[" + std::to_string(blob->size()) + "] = {";
  for (size_t i = 0; i < blob->size(); ++i) {
    if (i % 24 == 0) out += "\n ";
    out += " " + std::to_string(static_cast<unsigned char>((*blob)[i])) + ",";
  }
  out +=
      "\n};\n\n[[maybe_unused]] const bool kRegistered = (cpumodel::Catalog::register_compiled(\n"
      "    std::string_view(reinterpret_cast<const char*>(kBlob), sizeof kBlob)), true);\n\n}  // namespace\n";
  if (auto st = cpumodel::write_file_atomic(argv[2], out); !st) {
    std::fprintf(stderr, "catalog_compile: %s\n", st.error().message.c_str());
    return st.error().exit_code;
  }
  return 0;
}
