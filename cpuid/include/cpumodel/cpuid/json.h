// A minimal streaming JSON writer (objects, arrays, strings, numbers, booleans), used for every
// --json output so the schema is produced one way. No third-party dependency.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cpumodel {

class JsonWriter {
 public:
  explicit JsonWriter(bool pretty = true) : pretty_(pretty) {}
  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(std::string_view k);
  JsonWriter& value(std::string_view s);
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(const std::string& s) { return value(std::string_view(s)); }
  JsonWriter& value(bool b);
  JsonWriter& value(int64_t n);
  JsonWriter& value(uint64_t n);
  JsonWriter& value(int n) { return value(static_cast<int64_t>(n)); }
  JsonWriter& value(unsigned n) { return value(static_cast<uint64_t>(n)); }
  JsonWriter& value(double d);
  JsonWriter& null();
  JsonWriter& strings(const std::vector<std::string>& list);  // an array of strings
  template <class T>
  JsonWriter& field(std::string_view k, const T& v) { key(k); return value(v); }
  const std::string& str() const { return out_; }

 private:
  void before_value();
  void newline();
  std::string out_;
  std::vector<bool> first_;  // per open container: nothing written yet
  bool pretty_;
  bool after_key_ = false;
};

std::string json_escape(std::string_view s);

}  // namespace cpumodel
