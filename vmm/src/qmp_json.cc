// The JSON reader QMP needs (RFC 8259: objects, arrays, strings with escapes, numbers, literals).
#include <charconv>
#include <cmath>
#include <cstdio>

#include "cpumodel/cpuid/json.h"
#include "cpumodel/vmm/qmp.h"

namespace cpumodel::vmm {

class JsonParser {
 public:
  explicit JsonParser(std::string_view t) : t_(t) {}

  Result<JsonValue> document() {
    JsonValue v;
    if (!value(v, 0)) return err();
    ws();
    if (p_ != t_.size()) return fail("unexpected text after the value"), err();
    return v;
  }

 private:
  static constexpr int kMaxDepth = 64;

  Error err() const { return input_error("JSON: " + error_ + " at column " + std::to_string(col_ + 1)); }
  bool fail(const std::string& what) {
    if (error_.empty()) {
      error_ = what;
      col_ = p_;
    }
    return false;
  }
  void ws() {
    while (p_ < t_.size() && (t_[p_] == ' ' || t_[p_] == '\t' || t_[p_] == '\n' || t_[p_] == '\r')) ++p_;
  }
  bool literal(std::string_view word) {
    if (t_.substr(p_, word.size()) != word) return fail("unknown literal");
    p_ += word.size();
    return true;
  }

  bool value(JsonValue& v, int depth) {
    if (depth > kMaxDepth) return fail("nesting too deep");
    ws();
    if (p_ >= t_.size()) return fail("unexpected end of input");
    char c = t_[p_];
    if (c == '{') return object(v, depth);
    if (c == '[') return array(v, depth);
    if (c == '"') {
      v.kind_ = JsonValue::Kind::kString;
      return string(v.string_);
    }
    if (c == 't' || c == 'f') {
      v.kind_ = JsonValue::Kind::kBool;
      v.bool_ = c == 't';
      return literal(c == 't' ? "true" : "false");
    }
    if (c == 'n') return literal("null");
    return number(v);
  }

  bool number(JsonValue& v) {
    size_t start = p_;
    if (p_ < t_.size() && t_[p_] == '-') ++p_;
    while (p_ < t_.size() && (std::isdigit(static_cast<unsigned char>(t_[p_])) || t_[p_] == '.' || t_[p_] == 'e' ||
                              t_[p_] == 'E' || t_[p_] == '+' || t_[p_] == '-'))
      ++p_;
    std::string text(t_.substr(start, p_ - start));
    char* end = nullptr;
    double d = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(d)) {
      p_ = start;
      return fail("expected a value");
    }
    v.kind_ = JsonValue::Kind::kNumber;
    v.number_ = d;
    return true;
  }

  static void utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  bool hex4(uint32_t& cp) {
    if (p_ + 4 > t_.size()) return fail("short \\u escape");
    cp = 0;
    for (int i = 0; i < 4; ++i) {
      char c = t_[p_++];
      int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
              : (c >= 'a' && c <= 'f')                    ? c - 'a' + 10
              : (c >= 'A' && c <= 'F')                    ? c - 'A' + 10
                                                          : -1;
      if (d < 0) return fail("bad \\u escape");
      cp = cp * 16 + static_cast<uint32_t>(d);
    }
    return true;
  }

  bool string(std::string& out) {
    ++p_;  // opening quote
    while (p_ < t_.size()) {
      char c = t_[p_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (p_ >= t_.size()) break;
      char e = t_[p_++];
      static const std::string_view kFrom = "\"\\/bfnrt", kTo = "\"\\/\b\f\n\r\t";
      if (auto k = kFrom.find(e); k != std::string_view::npos) {
        out += kTo[k];
      } else if (e == 'u') {
        uint32_t cp;
        if (!hex4(cp)) return false;
        if (cp >= 0xd800 && cp < 0xdc00 && t_.substr(p_, 2) == "\\u") {
          p_ += 2;
          uint32_t lo;
          if (!hex4(lo)) return false;
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        utf8(out, cp);
      } else {
        --p_;
        return fail("bad escape");
      }
    }
    return fail("unterminated string");
  }

  bool array(JsonValue& v, int depth) {
    v.kind_ = JsonValue::Kind::kArray;
    ++p_;
    ws();
    if (p_ < t_.size() && t_[p_] == ']') return ++p_, true;
    for (;;) {
      JsonValue item;
      if (!value(item, depth + 1)) return false;
      v.items_.push_back(std::move(item));
      ws();
      if (p_ < t_.size() && t_[p_] == ',') { ++p_; continue; }
      if (p_ < t_.size() && t_[p_] == ']') return ++p_, true;
      return fail("expected ',' or ']'");
    }
  }

  bool object(JsonValue& v, int depth) {
    v.kind_ = JsonValue::Kind::kObject;
    ++p_;
    ws();
    if (p_ < t_.size() && t_[p_] == '}') return ++p_, true;
    for (;;) {
      ws();
      if (p_ >= t_.size() || t_[p_] != '"') return fail("expected a member name");
      std::string key;
      if (!string(key)) return false;
      ws();
      if (p_ >= t_.size() || t_[p_] != ':') return fail("expected ':'");
      ++p_;
      JsonValue member;
      if (!value(member, depth + 1)) return false;
      v.members_[key] = std::move(member);
      ws();
      if (p_ < t_.size() && t_[p_] == ',') { ++p_; continue; }
      if (p_ < t_.size() && t_[p_] == '}') return ++p_, true;
      return fail("expected ',' or '}'");
    }
  }

  std::string_view t_;
  size_t p_ = 0;
  std::string error_;
  size_t col_ = 0;
};

Result<JsonValue> parse_json(std::string_view text) { return JsonParser(text).document(); }

const JsonValue* JsonValue::get(std::string_view key) const {
  if (kind_ != Kind::kObject) return nullptr;
  auto it = members_.find(std::string(key));
  return it == members_.end() ? nullptr : &it->second;
}

std::string JsonValue::dump() const {
  switch (kind_) {
    case Kind::kNull: return "null";
    case Kind::kBool: return bool_ ? "true" : "false";
    case Kind::kNumber: {
      char buf[32];
      if (number_ == std::floor(number_) && std::fabs(number_) < 1e15)
        std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(number_));
      else
        *std::to_chars(buf, buf + sizeof buf - 1, number_).ptr = '\0';  // shortest round-trip form
      return buf;
    }
    case Kind::kString: return json_escape(string_);
    case Kind::kArray: {
      std::string s = "[";
      for (size_t i = 0; i < items_.size(); ++i) s += (i ? ", " : "") + items_[i].dump();
      return s + "]";
    }
    case Kind::kObject: {
      std::string s = "{";
      bool first = true;
      for (const auto& [k, v] : members_) {
        s += (first ? "" : ", ") + json_escape(k) + ": " + v.dump();
        first = false;
      }
      return s + "}";
    }
  }
  return "null";
}

JsonValue JsonValue::make_string(std::string s) {
  JsonValue v;
  v.kind_ = Kind::kString;
  v.string_ = std::move(s);
  return v;
}

JsonValue JsonValue::make_number(double d) {
  JsonValue v;
  v.kind_ = Kind::kNumber;
  v.number_ = d;
  return v;
}

JsonValue JsonValue::make_object(std::map<std::string, JsonValue> m) {
  JsonValue v;
  v.kind_ = Kind::kObject;
  v.members_ = std::move(m);
  return v;
}

}  // namespace cpumodel::vmm
