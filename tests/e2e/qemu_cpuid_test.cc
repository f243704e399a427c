// Differential test of the guest CPUID builder against QEMU 7.2 as the peer: boot
// `qemu-system-x86_64 -accel tcg -cpu MODEL -smp SMP` with Debian's kernel and a one-file initramfs
// (qemu_cpuid_probe.c as /init) that prints every vCPU's CPUID on the serial console, then build our
// tables for the same model and topology and compare leaf by leaf, register by register.
//
// The peer filters features to what TCG can do; we give our builder the same host: the CPUID of
// `-cpu max` under TCG (one extra boot), as if it were KVM_GET_SUPPORTED_CPUID, and the catalog's
// TCG accelerator defaults. So QEMU's "TCG doesn't support requested feature" warnings must also
// equal ours. Bits that legitimately differ are in qemu_cpuid_known_differences.txt with reasons.
//
// Cost: 6 models x 4 topologies + 1 boots, two at a time, about 4-10 s each (PVH boot of the
// decompressed kernel, no firmware). Labelled `slow`.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cpumodel/cpuid/guest_cpuid.h"
#include "cpumodel/models/catalog.h"

namespace cpumodel {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kModels = {"qemu64",         "Nehalem",         "Haswell-noTSX",
                                          "Skylake-Server", "EPYC",            "EPYC-Milan"};
const std::vector<std::string> kTopologies = {
    "1",                                   // one vCPU
    "4,maxcpus=8,sockets=2,cores=2,threads=2",  // hot-plug IDs reserved
    "6,sockets=1,cores=3,threads=2",       // 3 cores: a gap in the APIC IDs
    "8,sockets=2,dies=2,cores=2",          // dies: leaf 0x1F on Intel
};

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool have_program(const char* name) {
  return std::system((std::string("command -v ") + name + " >/dev/null 2>&1").c_str()) == 0;
}

std::string newest_kernel() {
  std::vector<std::string> k;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/boot", ec))
    if (e.path().filename().string().rfind("vmlinuz-", 0) == 0) k.push_back(e.path());
  std::sort(k.begin(), k.end());
  return k.empty() ? "" : k.back();
}

// bzImage -> the ELF vmlinux inside (its PVH entry lets QEMU start it directly: no firmware, no
// decompressing under TCG, which takes most of a boot): boot/extract_vmlinux.sh, which the boot rig
// uses too.
bool extract_vmlinux(const std::string& bzimage, const fs::path& out) {
  std::string cmd = std::string(CPUMODEL_E2E_DIR "/boot/extract_vmlinux.sh ") + bzimage + " " + out.string() + " 2>/dev/null";
  return std::system(cmd.c_str()) == 0;
}

// A newc cpio with /dev (for devtmpfs) and /init.
void append_cpio(std::string& out, const std::string& name, uint32_t mode, const std::string& data, uint32_t ino) {
  char hdr[111];
  std::snprintf(hdr, sizeof hdr, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ino, mode, 0u, 0u,
                1u, 0u, static_cast<uint32_t>(data.size()), 0u, 0u, 0u, 0u,
                static_cast<uint32_t>(name.size() + 1), 0u);
  out.append(hdr, 110);
  out += name;
  out += '\0';
  while (out.size() % 4) out += '\0';
  out += data;
  while (out.size() % 4) out += '\0';
}

bool make_initramfs(const std::string& probe, const fs::path& out) {
  std::string init = read_all(probe);
  if (init.empty()) return false;
  std::string cpio;
  append_cpio(cpio, "dev", 040755, "", 1);
  append_cpio(cpio, "init", 0100755, init, 2);
  append_cpio(cpio, "TRAILER!!!", 0, "", 0);
  std::ofstream(out, std::ios::binary).write(cpio.data(), static_cast<std::streamsize>(cpio.size()));
  return true;
}

struct GuestDump {
  std::vector<CpuidTable> cpus;               // by online CPU number
  std::vector<std::vector<CpuidKey>> probed;  // what was asked, per CPU
  std::set<std::string> warnings;             // QEMU's "TCG doesn't support requested feature: X" -> X
  std::string error;
};

GuestDump parse_dump(const std::string& out, const std::string& err) {
  GuestDump g;
  std::istringstream in(out);
  std::string line;
  bool ended = false;
  while (std::getline(in, line)) {
    unsigned cpu = 0, leaf = 0, sub = 0, a = 0, b = 0, c = 0, d = 0;
    if (std::sscanf(line.c_str(), "CPU %u:", &cpu) == 1) {
      g.cpus.emplace_back();
      g.probed.emplace_back();
    } else if (!g.cpus.empty() && std::sscanf(line.c_str(), " 0x%x 0x%x: eax=0x%x ebx=0x%x ecx=0x%x edx=0x%x", &leaf,
                                              &sub, &a, &b, &c, &d) == 6) {
      g.cpus.back().set(leaf, sub, {a, b, c, d});
      g.probed.back().push_back({leaf, sub});
    } else if (line.rfind("PROBE-END", 0) == 0) {
      ended = true;
    }
  }
  if (!ended) g.error = "no PROBE-END on the serial console; stderr: " + err.substr(0, 400);
  std::istringstream e(err);
  const std::string key = "doesn't support requested feature: ";
  while (std::getline(e, line))
    if (auto at = line.find(key); at != std::string::npos) g.warnings.insert(line.substr(at + key.size()));
  return g;
}

struct Rig {
  std::string qemu_args;  // everything but -cpu/-smp
  fs::path dir;
};

GuestDump boot(const Rig& rig, const std::string& model, const std::string& smp, int slot) {
  fs::path out = rig.dir / ("out" + std::to_string(slot)), err = rig.dir / ("err" + std::to_string(slot));
  // A TCG boot takes 10-60 s; on a machine loaded by other work one was seen to pass 180 s. A run
  // cut off by the timeout (no PROBE-END) is given one more, longer try; a wrong table is not.
  GuestDump g;
  for (int seconds : {180, 480}) {
    std::string cmd = "timeout " + std::to_string(seconds) + " qemu-system-x86_64 " + rig.qemu_args + " -cpu " +
                      model + " -smp " + smp + " > " + out.string() + " 2> " + err.string() + " < /dev/null";
    int status = std::system(cmd.c_str());
    g = parse_dump(read_all(out), read_all(err));
    bool timed_out = WIFEXITED(status) && WEXITSTATUS(status) == 124;
    if (g.error.empty() || !timed_out) break;
  }
  return g;
}

struct Mask {
  uint32_t leaf;
  int64_t subleaf;  // -1: any
  Reg reg;
  uint32_t bits;
};

std::vector<Mask> load_masks(const std::string& path) {
  std::vector<Mask> m;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string leaf, sub, reg, bits;
    ls >> leaf >> sub >> reg >> bits;
    static const std::map<std::string, Reg> kRegs = {
        {"eax", Reg::kEax}, {"ebx", Reg::kEbx}, {"ecx", Reg::kEcx}, {"edx", Reg::kEdx}};
    EXPECT_TRUE(kRegs.count(reg)) << path << ": " << line;
    if (!kRegs.count(reg)) continue;
    m.push_back({static_cast<uint32_t>(std::stoul(leaf, nullptr, 16)), sub == "*" ? -1 : std::stoll(sub, nullptr, 16),
                 kRegs.at(reg), static_cast<uint32_t>(std::stoul(bits, nullptr, 16))});
  }
  return m;
}

uint32_t ignored(const std::vector<Mask>& masks, uint32_t leaf, uint32_t sub, Reg r) {
  uint32_t bits = 0;
  for (const auto& m : masks)
    if (m.leaf == leaf && (m.subleaf < 0 || m.subleaf == sub) && m.reg == r) bits |= m.bits;
  return bits;
}

bool in_range(const CpuidTable& t, uint32_t leaf) {
  if (leaf < 0x40000000u) return leaf <= t.max_basic();
  if (leaf < 0x80000000u) return leaf <= 0x40000001u;
  return leaf <= t.max_extended();
}

// "CPUID.07H:EBX.avx2 [bit 5]" -> is that bit masked?
bool warning_masked(const std::vector<Mask>& masks, const std::string& w) {
  unsigned leaf = 0, bit = 0;
  char reg[4] = {};
  if (std::sscanf(w.c_str(), "CPUID.%xH:%3s", &leaf, reg) < 2) return false;
  auto at = w.find("[bit ");
  if (at == std::string::npos || std::sscanf(w.c_str() + at, "[bit %u]", &bit) != 1) return false;
  for (Reg r : {Reg::kEax, Reg::kEbx, Reg::kEcx, Reg::kEdx})
    if (std::string(reg_name(r)) == reg && (ignored(masks, leaf, 0, r) >> bit & 1)) return true;
  return false;
}

// QEMU names a feature word by its leaf only ("CPUID.0DH:EAX.xsavec"), ours adds the subleaf
// ("CPUID.0DH.1:EAX.xsavec"): compare in QEMU's form.
std::string qemu_label(std::string w) {
  auto dot = w.find('.', 6);  // after "CPUID."
  auto colon = w.find(':');
  if (dot != std::string::npos && colon != std::string::npos && dot < colon) w.erase(dot, colon - dot);
  return w;
}

std::vector<std::string> compare(const std::string& label, const GuestDump& qemu, const GuestCpuid& ours,
                                 const std::vector<Mask>& masks) {
  std::vector<std::string> out;
  char buf[256];
  if (qemu.cpus.size() != ours.tables.size()) {
    out.push_back(label + ": QEMU guest has " + std::to_string(qemu.cpus.size()) + " vCPUs online, we built " +
                  std::to_string(ours.tables.size()));
    return out;
  }
  for (size_t i = 0; i < qemu.cpus.size(); ++i) {
    for (const CpuidKey& k : qemu.probed[i]) {
      if (!in_range(qemu.cpus[i], k.leaf)) continue;
      CpuidRegs q = qemu.cpus[i].get(k.leaf, k.subleaf), o = ours.tables[i].get(k.leaf, k.subleaf);
      for (Reg r : {Reg::kEax, Reg::kEbx, Reg::kEcx, Reg::kEdx}) {
        uint32_t keep = ~ignored(masks, k.leaf, k.subleaf, r);
        if ((q.get(r) & keep) == (o.get(r) & keep)) continue;
        std::snprintf(buf, sizeof buf, "%s vCPU %zu: CPUID 0x%08x.%u %s: QEMU 0x%08x, ours 0x%08x", label.c_str(), i,
                      k.leaf, k.subleaf, reg_name(r), q.get(r), o.get(r));
        out.push_back(buf);
      }
    }
  }
  std::set<std::string> mine;
  const std::string key = "doesn't support requested feature: ";
  for (const auto& w : ours.warnings)
    if (auto at = w.find(key); at != std::string::npos) mine.insert(qemu_label(w.substr(at + key.size())));
  for (const auto& w : qemu.warnings)
    if (!mine.count(w) && !warning_masked(masks, w)) out.push_back(label + ": QEMU drops " + w + ", we do not");
  for (const auto& w : mine)
    if (!qemu.warnings.count(w) && !warning_masked(masks, w)) out.push_back(label + ": we drop " + w + ", QEMU does not");
  return out;
}

class QemuCpuid : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_program("qemu-system-x86_64")) GTEST_SKIP() << "qemu-system-x86_64 not installed (qemu-system-x86)";
    kernel_ = newest_kernel();
    if (kernel_.empty()) GTEST_SKIP() << "no /boot/vmlinuz-* (linux-image-amd64)";
    rig_.dir = fs::temp_directory_path() / ("cpumodel-qemu-cpuid-" + std::to_string(::getpid()));
    fs::create_directories(rig_.dir);
    if (!extract_vmlinux(kernel_, rig_.dir / "vmlinux")) GTEST_SKIP() << "cannot decompress " << kernel_;
    ASSERT_TRUE(make_initramfs(CPUMODEL_E2E_PROBE, rig_.dir / "initrd")) << CPUMODEL_E2E_PROBE;
    rig_.qemu_args = "-accel tcg,thread=single -M pc -m 256 -nographic -nodefaults -serial stdio -no-reboot -kernel " +
                     (rig_.dir / "vmlinux").string() + " -initrd " + (rig_.dir / "initrd").string() +
                     " -append 'console=ttyS0 panic=-1 quiet rodata=off mitigations=off cryptomgr.notests'";
  }
  void TearDown() override {
    std::error_code ec;
    if (!rig_.dir.empty()) fs::remove_all(rig_.dir, ec);
  }
  std::string kernel_;
  Rig rig_;
};

TEST_F(QemuCpuid, TablesMatchQemu72Guests) {
  auto masks = load_masks(std::string(CPUMODEL_E2E_DIR) + "/qemu_cpuid_known_differences.txt");
  auto catalog = Catalog::load_default();
  ASSERT_TRUE(catalog) << catalog.error().message;
  catalog->set_accelerator(Accelerator::kTcg);

  // The host: what TCG offers, read from a `-cpu max` guest.
  GuestDump max = boot(rig_, "max", "1", 0);
  ASSERT_TRUE(max.error.empty()) << max.error;
  ASSERT_EQ(max.cpus.size(), 1u);
  HostProfile tcg;
  tcg.name = "qemu-7.2-tcg";
  tcg.cpuid = max.cpus[0];
  tcg.kvm_cpuid = max.cpus[0];
  // QEMU does not filter the XSAVE component words under TCG (their tcg_features are ~0): a model
  // keeps e.g. the AVX-512 components although TCG drops avx512f. As a host: every component.
  CpuidRegs xcr0 = tcg.kvm_cpuid->get(0xd, 0);
  xcr0.eax = xcr0.edx = 0xffffffff;
  tcg.kvm_cpuid->set(0xd, 0, xcr0);

  struct Job {
    std::string model, smp;
  };
  std::vector<Job> jobs;
  for (const auto& m : kModels)
    for (const auto& t : kTopologies) jobs.push_back({m, t});
  std::vector<std::string> failures;
  std::mutex mu;
  size_t next = 0, compared = 0;
  auto worker = [&](int slot) {
    for (;;) {
      Job job;
      {
        std::lock_guard<std::mutex> l(mu);
        if (next == jobs.size()) return;
        job = jobs[next++];
      }
      std::string label = "-cpu " + job.model + " -smp " + job.smp;
      GuestDump q = boot(rig_, job.model, job.smp, slot);
      std::vector<std::string> bad;
      auto x = catalog->expand(job.model);
      auto smp = parse_smp(job.smp);
      if (!q.error.empty()) bad.push_back(label + ": " + q.error);
      else if (!x) bad.push_back(label + ": " + x.error().message);
      else if (!smp) bad.push_back(label + ": " + smp.error().message);
      else if (auto g = build_guest_cpuid(x->cpu, *smp, &tcg); !g) bad.push_back(label + ": " + g.error().message);
      else bad = compare(label, q, *g, masks);
      std::lock_guard<std::mutex> l(mu);
      failures.insert(failures.end(), bad.begin(), bad.end());
      ++compared;
    }
  };
  unsigned n = std::max(1u, std::min(2u, std::thread::hardware_concurrency()));
  std::vector<std::thread> threads;
  for (unsigned s = 1; s <= n; ++s) threads.emplace_back(worker, static_cast<int>(s));
  for (auto& t : threads) t.join();
  EXPECT_EQ(compared, jobs.size());
  // One line per distinct difference (the same bit usually differs on every vCPU), with a count.
  std::map<std::string, std::pair<std::string, int>> groups;
  for (const auto& f : failures) {
    std::string key = f;
    if (auto v = key.find(" vCPU "); v != std::string::npos) key.erase(v, key.find(':', v) - v);
    if (auto s = key.find(" -smp "); s != std::string::npos) key.erase(s, key.find_first_of(":", s) - s);
    auto [it, fresh] = groups.emplace(key, std::make_pair(f, 0));
    ++it->second.second;
  }
  std::string report;
  for (const auto& [key, first] : groups)
    report += first.first + (first.second > 1 ? "  (x" + std::to_string(first.second) + ")" : "") + "\n";
  EXPECT_TRUE(failures.empty()) << failures.size() << " differences, " << groups.size() << " distinct:\n" << report;
}

}  // namespace
}  // namespace cpumodel
