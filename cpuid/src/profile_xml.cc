// libvirt's raw CPUID data: <cpudata arch='x86'> with <cpuid eax_in= ecx_in= eax= ebx= ecx= edx=/>
// and <msr index= eax= edx=/> elements (libvirt tests/cputestdata). A small hand-written reader
// for exactly that shape: declaration, comments, one <cpudata>, empty child elements.
#include <algorithm>
#include <vector>

#include "profile_internal.h"

namespace cpumodel::profile_detail {
namespace {

// XML's whitespace (S in the XML spec) and name characters (the ASCII subset we accept).
constexpr bool is_xml_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
constexpr bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
         c == ':' || c == '.';
}

class XmlReader {
 public:
  XmlReader(std::string_view text, const Source& src) : t_(text), src_(src) {}

  // At the end of the text, the line of the last content (not the empty line after a final newline).
  size_t line() const {
    size_t p = pos_;
    if (p >= t_.size())
      for (p = t_.size(); p > 0 && is_xml_space(t_[p - 1]);) --p;
    return line_at(p);
  }
  // Line of a position; positions are asked mostly in increasing order, so count incrementally.
  size_t line_at(size_t pos) const {
    pos = std::min(pos, t_.size());
    if (pos < counted_pos_) counted_pos_ = 0, counted_line_ = 1;
    counted_line_ += static_cast<size_t>(std::count(t_.data() + counted_pos_, t_.data() + pos, '\n'));
    counted_pos_ = pos;
    return counted_line_;
  }
  bool eof() const { return pos_ >= t_.size(); }
  Error err(const std::string& what) const { return src_.at(line(), what); }
  Error err_at(size_t pos, const std::string& what) const { return src_.at(line_at(pos), what); }

  void skip_space() {
    while (pos_ < t_.size() && is_xml_space(t_[pos_])) ++pos_;
  }
  bool starts(std::string_view s) const { return t_.substr(pos_, s.size()) == s; }

  // Skips whitespace, comments, an XML declaration and processing instructions.
  std::optional<Error> skip_misc() {
    for (;;) {
      skip_space();
      if (pos_ + 1 >= t_.size() || t_[pos_] != '<' || (t_[pos_ + 1] != '!' && t_[pos_ + 1] != '?')) return std::nullopt;
      if (starts("<!--")) {
        size_t end = t_.find("-->", pos_ + 4);
        if (end == std::string_view::npos) return err("truncated XML: comment never closed ('-->')");
        pos_ = end + 3;
      } else if (starts("<?")) {
        size_t end = t_.find("?>", pos_ + 2);
        if (end == std::string_view::npos) return err("truncated XML: '<?' never closed ('?>')");
        pos_ = end + 2;
      } else {
        return std::nullopt;
      }
    }
  }

  struct Attr {
    std::string_view name, value;
  };
  // One start tag; views into the text. Reused from element to element (no allocation per tag).
  struct Element {
    std::string_view name;
    std::vector<Attr> attrs;
    size_t pos = 0;
    bool empty = false;  // "<x .../>"
    const std::string_view* find(std::string_view attr) const {
      for (const auto& a : attrs)
        if (a.name == attr) return &a.value;
      return nullptr;
    }
  };

  // Reads "<name attr='v' ...>" or ".../>" at the current position (which holds '<') into `e`.
  std::optional<Error> read_start_tag(Element& e) {
    e.attrs.clear();
    e.empty = false;
    e.pos = pos_;
    ++pos_;
    e.name = read_name();
    if (e.name.empty()) return err("malformed XML: expected an element name after '<'");
    for (;;) {
      skip_space();
      if (eof()) return err("truncated XML: element <" + std::string(e.name) + "> not closed");
      if (t_[pos_] == '/' && pos_ + 1 < t_.size() && t_[pos_ + 1] == '>') {
        pos_ += 2;
        e.empty = true;
        return std::nullopt;
      }
      if (t_[pos_] == '>') {
        ++pos_;
        return std::nullopt;
      }
      size_t apos = pos_;
      std::string_view an = read_name();
      if (an.empty())
        return err(std::string("malformed XML: unexpected '") + t_[pos_] + "' in <" + std::string(e.name) + ">");
      skip_space();
      if (eof() || t_[pos_] != '=') return err("malformed XML: attribute '" + std::string(an) + "' has no value");
      ++pos_;
      skip_space();
      if (eof() || (t_[pos_] != '\'' && t_[pos_] != '"'))
        return err("malformed XML: attribute '" + std::string(an) + "' value not quoted");
      char q = t_[pos_++];
      size_t end = t_.find(q, pos_);
      if (end == std::string_view::npos)
        return err_at(apos, "truncated XML: attribute '" + std::string(an) + "' value never closed");
      if (e.find(an)) return err_at(apos, "malformed XML: attribute '" + std::string(an) + "' given twice");
      e.attrs.push_back({an, t_.substr(pos_, end - pos_)});
      pos_ = end + 1;
    }
  }

  // Expects "</name>" at the current position.
  std::optional<Error> read_end_tag(std::string_view name) {
    if (!starts("</") || t_.substr(pos_ + 2, name.size()) != name)
      return err("malformed XML: expected </" + std::string(name) + ">");
    pos_ += 2 + name.size();
    skip_space();
    if (eof() || t_[pos_] != '>') return err("malformed XML: expected '>' after </" + std::string(name));
    ++pos_;
    return std::nullopt;
  }

 private:
  std::string_view read_name() {
    size_t start = pos_;
    while (pos_ < t_.size() && is_name_char(t_[pos_])) ++pos_;
    return t_.substr(start, pos_ - start);
  }

  std::string_view t_;
  const Source& src_;
  size_t pos_ = 0;
  mutable size_t counted_pos_ = 0, counted_line_ = 1;
};

// A required hex attribute of at most `digits` digits.
Result<uint64_t> hex_attr(const XmlReader& r, const XmlReader::Element& e, const char* name, size_t digits,
                          bool required = true) {
  const std::string_view* v = e.find(name);
  if (!v) {
    if (!required) return uint64_t{0};
    return r.err_at(e.pos, "<" + std::string(e.name) + "> lacks attribute " + name);
  }
  auto x = parse_hex(*v, false, digits);
  if (!x)
    return r.err_at(e.pos, "<" + std::string(e.name) + "> attribute " + name + "='" + std::string(*v) +
                               "' is not a hex number");
  return *x;
}

std::optional<Error> add_cpuid(const XmlReader& r, const XmlReader::Element& e, EntryCollector& c) {
  static constexpr std::string_view kNames[6] = {"eax_in", "ecx_in", "eax", "ebx", "ecx", "edx"};
  // One pass over the attributes (others are ignored, as before): eax_in, ecx_in, e[abcd]x.
  const std::string_view* at[6] = {};
  for (const auto& a : e.attrs) {
    std::string_view n = a.name;
    if (n.size() == 6 && n.substr(1) == "ax_in" && n[0] == 'e') at[0] = &a.value;
    else if (n.size() == 6 && n.substr(1) == "cx_in" && n[0] == 'e') at[1] = &a.value;
    else if (n.size() == 3 && n[0] == 'e' && n[2] == 'x' && n[1] >= 'a' && n[1] <= 'd') at[2 + (n[1] - 'a')] = &a.value;
  }
  uint64_t v[6];
  for (int i = 0; i < 6; ++i) {
    if (!at[i]) {
      if (i == 1) {  // ecx_in may be left out: subleaf 0
        v[i] = 0;
        continue;
      }
      return r.err_at(e.pos, "<" + std::string(e.name) + "> lacks attribute " + std::string(kNames[i]));
    }
    auto x = parse_hex(*at[i], false, 8);
    if (!x)
      return r.err_at(e.pos, "<" + std::string(e.name) + "> attribute " + std::string(kNames[i]) + "='" +
                                 std::string(*at[i]) + "' is not a hex number");
    v[i] = *x;
  }
  CpuidRegs regs{static_cast<uint32_t>(v[2]), static_cast<uint32_t>(v[3]), static_cast<uint32_t>(v[4]),
                 static_cast<uint32_t>(v[5])};
  return c.add(static_cast<uint32_t>(v[0]), static_cast<uint32_t>(v[1]), regs, r.line_at(e.pos));
}

std::optional<Error> add_msr(const XmlReader& r, const XmlReader::Element& e, EntryCollector& c) {
  auto index = hex_attr(r, e, "index", 8);
  if (!index) return index.error();
  auto eax = hex_attr(r, e, "eax", 8);
  if (!eax) return eax.error();
  auto edx = hex_attr(r, e, "edx", 8);
  if (!edx) return edx.error();
  return c.add_msr(static_cast<uint32_t>(*index), (*edx << 32) | *eax, r.line_at(e.pos));
}

}  // namespace

Result<HostProfile> parse_libvirt_xml(std::string_view text, const Source& src) {
  XmlReader r(text, src);
  if (auto e = r.skip_misc()) return *e;
  if (r.eof() || !r.starts("<")) return r.err("malformed XML: no root element");
  XmlReader::Element root;
  if (auto e = r.read_start_tag(root)) return *e;
  if (root.name != "cpudata")
    return r.err_at(root.pos, "XML root is <" + std::string(root.name) + ">, expected libvirt's <cpudata arch='x86'>");
  if (const std::string_view* arch = root.find("arch"); arch && *arch != "x86")
    return r.err_at(root.pos, "<cpudata arch='" + std::string(*arch) + "'> is not x86");
  EntryCollector c(src);
  if (!root.empty) {
    XmlReader::Element el;
    for (;;) {
      if (auto e = r.skip_misc()) return *e;
      if (r.eof()) return r.err("truncated XML: <cpudata> never closed (no </cpudata>)");
      if (r.starts("</")) {
        if (auto e = r.read_end_tag("cpudata")) return *e;
        break;
      }
      if (!r.starts("<")) return r.err("malformed XML: text outside an element");
      if (auto e = r.read_start_tag(el)) return *e;
      if (!el.empty) {
        if (auto e = r.skip_misc()) return *e;
        if (auto e = r.read_end_tag(el.name)) return *e;
      }
      std::optional<Error> e;
      if (el.name == "cpuid") e = add_cpuid(r, el, c);
      else if (el.name == "msr") e = add_msr(r, el, c);
      else return r.err_at(el.pos, "unexpected element <" + std::string(el.name) + "> in <cpudata>");
      if (e) return *e;
    }
  }
  if (auto e = r.skip_misc()) return *e;
  if (!r.eof()) return r.err("malformed XML: content after </cpudata>");
  if (c.table().empty()) return r.err_at(root.pos, "<cpudata> has no <cpuid> entries");
  HostProfile p;
  p.cpuid = std::move(c.table());
  p.msrs = std::move(c.msrs());
  return p;
}

}  // namespace cpumodel::profile_detail
