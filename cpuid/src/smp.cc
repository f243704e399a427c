#include "cpumodel/cpuid/smp.h"

#include <charconv>
#include <string>

namespace cpumodel {
namespace {

Error smp_error(size_t column, const std::string& what) {
  return input_error("smp column " + std::to_string(column) + ": " + what);
}

// 'text' (appended to, never inserted at the front: GCC 12 at -O3 warns falsely (-Wrestrict)
// about `"'" + std::string(...)`).
std::string quoted(std::string_view text) {
  std::string q;
  q.reserve(text.size() + 2);
  q += '\'';
  q += text;
  q += '\'';
  return q;
}
}  // namespace

Result<SmpConfig> parse_smp(std::string_view text) {
  if (text.empty()) return input_error("smp is empty; expected N[,maxcpus=M][,sockets=S][,dies=D][,cores=C][,threads=T]");
  struct Field {
    const char* key;
    unsigned value = 0;
    bool given = false;
  };
  Field f[] = {{"cpus"}, {"maxcpus"}, {"sockets"}, {"dies"}, {"cores"}, {"threads"}};
  size_t pos = 0;
  bool first = true;
  for (;;) {
    size_t end = text.find(',', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view tok = text.substr(pos, end - pos);
    size_t column = pos + 1;
    if (tok.empty()) return smp_error(column, "empty item");
    size_t eq = tok.find('=');
    std::string_view key = eq == std::string_view::npos ? std::string_view("cpus") : tok.substr(0, eq);
    std::string_view val = eq == std::string_view::npos ? tok : tok.substr(eq + 1);
    size_t val_column = eq == std::string_view::npos ? column : column + eq + 1;
    if (eq == std::string_view::npos && !first)
      return smp_error(column, quoted(tok) + ": expected key=value (maxcpus, sockets, dies, cores, threads)");
    Field* field = nullptr;
    for (auto& x : f)
      if (key == x.key) field = &x;
    if (!field)
      return smp_error(column, "unknown key '" + std::string(key) + "' (expected cpus, maxcpus, sockets, dies, cores, threads)");
    if (field->given) return smp_error(column, quoted(key) + " given twice");
    unsigned v = 0;
    auto [p, ec] = std::from_chars(val.data(), val.data() + val.size(), v);
    if (val.empty() || ec != std::errc() || p != val.data() + val.size())
      return smp_error(val_column, quoted(val) + " is not a whole number");
    if (v == 0) return smp_error(val_column, std::string(field->key) + " must be at least 1");
    if (v > 4096) return smp_error(val_column, std::string(field->key) + "=" + std::to_string(v) + " is more than 4096");
    field->value = v;
    field->given = true;
    first = false;
    if (end == text.size()) break;
    pos = end + 1;
  }
  unsigned cpus = f[0].value, maxcpus = f[1].value, sockets = f[2].value, dies = f[3].value,
           cores = f[4].value, threads = f[5].value;
  if (!dies) dies = 1;
  // Bounds the computed values too (found by tests/fuzz/fuzz_smp: sockets=4096,dies=4096,threads=256
  // overflowed to a division by zero; sockets=2,dies=2,cores=4,threads=962 gave 15392 vCPUs).
  if (1ull * (sockets ? sockets : 1) * dies * (cores ? cores : 1) * (threads ? threads : 1) > 4096)
    return input_error("smp '" + std::string(text) + "': sockets * dies * cores * threads is more than 4096");
  // QEMU 7.2's machine-smp.c, machine types >= 6.2: omitted values prefer cores over sockets,
  // then sockets, and threads are computed last.
  if (!cpus && !maxcpus) {
    sockets = sockets ? sockets : 1;
    cores = cores ? cores : 1;
    threads = threads ? threads : 1;
  } else {
    maxcpus = maxcpus ? maxcpus : cpus;
    if (!cores) {
      sockets = sockets ? sockets : 1;
      threads = threads ? threads : 1;
      cores = maxcpus / (sockets * dies * threads);
    } else if (!sockets) {
      threads = threads ? threads : 1;
      sockets = maxcpus / (dies * cores * threads);
    }
    if (!threads) threads = maxcpus / (sockets * dies * cores);
  }
  unsigned long long product = 1ull * sockets * dies * cores * threads;
  maxcpus = maxcpus ? maxcpus : static_cast<unsigned>(product);
  cpus = cpus ? cpus : maxcpus;
  if (cores == 0 || sockets == 0 || threads == 0 || product != maxcpus)
    return input_error("smp '" + std::string(text) + "': sockets (" + std::to_string(sockets) + ") * dies (" +
                       std::to_string(dies) + ") * cores (" + std::to_string(cores) + ") * threads (" +
                       std::to_string(threads) + ") = " + std::to_string(product) + " must equal maxcpus (" +
                       std::to_string(maxcpus) + ")");
  if (cpus > maxcpus)
    return input_error("smp '" + std::string(text) + "': " + std::to_string(cpus) + " vCPUs exceed maxcpus=" +
                       std::to_string(maxcpus));
  return SmpConfig{cpus, maxcpus, sockets, dies, cores, threads};
}

std::string format_smp(const SmpConfig& s) {
  return std::to_string(s.cpus) + ",maxcpus=" + std::to_string(s.maxcpus) + ",sockets=" + std::to_string(s.sockets) +
         ",dies=" + std::to_string(s.dies) + ",cores=" + std::to_string(s.cores) + ",threads=" + std::to_string(s.threads);
}

}  // namespace cpumodel
