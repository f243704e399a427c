// libvirt's raw CPUID data: <cpudata arch='x86'> with <cpuid eax_in= ecx_in= eax= ebx= ecx= edx=/>
// and <msr index= eax= edx=/> elements (libvirt tests/cputestdata). A small hand-written reader
// for exactly that shape: declaration, comments, one <cpudata>, empty child elements.
#include <algorithm>
#include <cctype>
#include <map>

#include "profile_internal.h"

namespace cpumodel::profile_detail {
namespace {

class XmlReader {
 public:
  XmlReader(std::string_view text, const Source& src) : t_(text), src_(src) {}

  // At the end of the text, the line of the last content (not the empty line after a final newline).
  size_t line() const {
    size_t p = pos_;
    if (p >= t_.size())
      for (p = t_.size(); p > 0 && std::isspace(static_cast<unsigned char>(t_[p - 1]));) --p;
    return line_at(p);
  }
  // Line of a position; positions are asked mostly in increasing order, so count incrementally.
  size_t line_at(size_t pos) const {
    pos = std::min(pos, t_.size());
    if (pos < counted_pos_) counted_pos_ = 0, counted_line_ = 1;
    for (; counted_pos_ < pos; ++counted_pos_) counted_line_ += t_[counted_pos_] == '\n';
    return counted_line_;
  }
  bool eof() const { return pos_ >= t_.size(); }
  Error err(const std::string& what) const { return src_.at(line(), what); }
  Error err_at(size_t pos, const std::string& what) const { return src_.at(line_at(pos), what); }

  void skip_space() {
    while (pos_ < t_.size() && std::isspace(static_cast<unsigned char>(t_[pos_]))) ++pos_;
  }
  bool starts(std::string_view s) const { return t_.substr(pos_, s.size()) == s; }

  // Skips whitespace, comments, an XML declaration and processing instructions.
  std::optional<Error> skip_misc() {
    for (;;) {
      skip_space();
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

  struct Element {
    std::string name;
    std::map<std::string, std::string> attrs;
    size_t pos = 0;
    bool empty = false;  // "<x .../>"
  };

  // Reads "<name attr='v' ...>" or ".../>" at the current position (which holds '<').
  Result<Element> read_start_tag() {
    Element e;
    e.pos = pos_;
    ++pos_;
    e.name = read_name();
    if (e.name.empty()) return err("malformed XML: expected an element name after '<'");
    for (;;) {
      skip_space();
      if (eof()) return err("truncated XML: element <" + e.name + "> not closed");
      if (starts("/>")) {
        pos_ += 2;
        e.empty = true;
        return e;
      }
      if (t_[pos_] == '>') {
        ++pos_;
        return e;
      }
      size_t apos = pos_;
      std::string an = read_name();
      if (an.empty()) return err(std::string("malformed XML: unexpected '") + t_[pos_] + "' in <" + e.name + ">");
      skip_space();
      if (eof() || t_[pos_] != '=') return err("malformed XML: attribute '" + an + "' has no value");
      ++pos_;
      skip_space();
      if (eof() || (t_[pos_] != '\'' && t_[pos_] != '"')) return err("malformed XML: attribute '" + an + "' value not quoted");
      char q = t_[pos_++];
      size_t end = t_.find(q, pos_);
      if (end == std::string_view::npos) return err_at(apos, "truncated XML: attribute '" + an + "' value never closed");
      if (!e.attrs.emplace(an, std::string(t_.substr(pos_, end - pos_))).second)
        return err_at(apos, "malformed XML: attribute '" + an + "' given twice");
      pos_ = end + 1;
    }
  }

  // Expects "</name>" at the current position.
  std::optional<Error> read_end_tag(const std::string& name) {
    std::string want = "</" + name;
    if (!starts(want)) return err("malformed XML: expected </" + name + ">");
    pos_ += want.size();
    skip_space();
    if (eof() || t_[pos_] != '>') return err("malformed XML: expected '>' after </" + name);
    ++pos_;
    return std::nullopt;
  }

 private:
  std::string read_name() {
    size_t start = pos_;
    while (pos_ < t_.size() && (std::isalnum(static_cast<unsigned char>(t_[pos_])) || t_[pos_] == '_' ||
                                t_[pos_] == '-' || t_[pos_] == ':' || t_[pos_] == '.'))
      ++pos_;
    return std::string(t_.substr(start, pos_ - start));
  }

  std::string_view t_;
  const Source& src_;
  size_t pos_ = 0;
  mutable size_t counted_pos_ = 0, counted_line_ = 1;
};

// A required hex attribute of at most `digits` digits.
Result<uint64_t> hex_attr(const XmlReader& r, const XmlReader::Element& e, const char* name, size_t digits,
                          bool required = true) {
  auto it = e.attrs.find(name);
  if (it == e.attrs.end()) {
    if (!required) return uint64_t{0};
    return r.err_at(e.pos, "<" + e.name + "> lacks attribute " + name);
  }
  auto v = parse_hex(it->second, false, digits);
  if (!v) return r.err_at(e.pos, "<" + e.name + "> attribute " + name + "='" + it->second + "' is not a hex number");
  return *v;
}

std::optional<Error> add_cpuid(const XmlReader& r, const XmlReader::Element& e, EntryCollector& c) {
  uint64_t v[6];
  const char* names[6] = {"eax_in", "ecx_in", "eax", "ebx", "ecx", "edx"};
  for (int i = 0; i < 6; ++i) {
    auto x = hex_attr(r, e, names[i], 8, i != 1);
    if (!x) return x.error();
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
  auto root = r.read_start_tag();
  if (!root) return root.error();
  if (root->name != "cpudata")
    return r.err_at(root->pos, "XML root is <" + root->name + ">, expected libvirt's <cpudata arch='x86'>");
  auto arch = root->attrs.find("arch");
  if (arch != root->attrs.end() && arch->second != "x86")
    return r.err_at(root->pos, "<cpudata arch='" + arch->second + "'> is not x86");
  EntryCollector c(src);
  if (!root->empty) {
    for (;;) {
      if (auto e = r.skip_misc()) return *e;
      if (r.eof()) return r.err("truncated XML: <cpudata> never closed (no </cpudata>)");
      if (r.starts("</")) {
        if (auto e = r.read_end_tag("cpudata")) return *e;
        break;
      }
      if (!r.starts("<")) return r.err("malformed XML: text outside an element");
      auto el = r.read_start_tag();
      if (!el) return el.error();
      if (!el->empty) {
        if (auto e = r.skip_misc()) return *e;
        if (auto e = r.read_end_tag(el->name)) return *e;
      }
      std::optional<Error> e;
      if (el->name == "cpuid") e = add_cpuid(r, *el, c);
      else if (el->name == "msr") e = add_msr(r, *el, c);
      else return r.err_at(el->pos, "unexpected element <" + el->name + "> in <cpudata>");
      if (e) return *e;
    }
  }
  if (auto e = r.skip_misc()) return *e;
  if (!r.eof()) return r.err("malformed XML: content after </cpudata>");
  if (c.table().empty()) return r.err_at(root->pos, "<cpudata> has no <cpuid> entries");
  HostProfile p;
  p.cpuid = std::move(c.table());
  p.msrs = std::move(c.msrs());
  return p;
}

}  // namespace cpumodel::profile_detail
