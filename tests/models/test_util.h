// Shared helpers for the catalog tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "cpumodel/models/catalog.h"

namespace cpumodel::testing {

inline const Catalog& catalog() {
  static const Catalog cat = [] {
    auto c = Catalog::load({std::string(CPUMODEL_SOURCE_DATA_DIR) + "/models"});
    if (!c) {
      ADD_FAILURE() << c.error().message;
      std::abort();
    }
    return std::move(*c);
  }();
  return cat;
}

// A temporary directory removed at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "cpumodel-models-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& text) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p) << text;
    return p;
  }

 private:
  std::string path_;
};

}  // namespace cpumodel::testing
