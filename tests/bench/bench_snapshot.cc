// Snapshot figures (printed, never asserted):
//   - vCPU state save + restore through KVM, per vCPU (target: under 1 ms);
//   - a 256 MiB guest: memory file write throughput (target: >= 1 GB/s on this disk), with and
//     without fdatasync, dense and sparse memory;
//   - restore-to-running latency with the memory file mapped lazily (MAP_PRIVATE; target: under
//     20 ms): from reading the snapshot to the guest's first instruction having run (its first
//     `out`), with and without the in-kernel irqchip, and with the memory checksum checked first.
// Usage: bench_snapshot [DIR]   (DIR: where the files go; default $TMPDIR or /tmp)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <vector>

#include "cpumodel/vmm/guest_abi.h"
#include "cpumodel/vmm/kvm.h"
#include "cpumodel/vmm/machine.h"
#include "cpumodel/vmm/snapshot.h"
#include "cpumodel/vmm/vcpu_state.h"

using namespace cpumodel;
using namespace cpumodel::vmm;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// mov $CPUMODEL_DONE_PORT, %dx; out %eax, %dx; hlt
const uint8_t kFirstOut[] = {0x66, 0xba, CPUMODEL_DONE_PORT & 0xff, CPUMODEL_DONE_PORT >> 8, 0xef, 0xf4};

int bench_vcpu_state() {
  auto kvm = Kvm::open();
  if (!kvm) return std::printf("vCPU state: skipped (%s)\n", kvm.error().message.c_str()), 0;
  auto table = kvm->supported_cpuid();
  for (bool irqchip : {false, true}) {
    auto vm = kvm->create_vm();
    if (!vm) return std::printf("%s\n", vm.error().message.c_str()), 1;
    if (irqchip && !vm->create_irqchip_if_supported().ok()) return 1;
    auto vcpu = vm->create_vcpu(0);
    if (!vcpu || !vcpu->set_cpuid(*table).ok()) return std::printf("vCPU setup failed\n"), 1;
    auto caps = probe_state_caps(*kvm, *vm);
    if (!caps) return std::printf("%s\n", caps.error().message.c_str()), 1;
    std::vector<double> save, restore;
    size_t msrs = 0;
    for (int i = 0; i < 300; ++i) {
      auto t = Clock::now();
      auto s = save_vcpu_state(*vcpu, *caps);
      save.push_back(ms_since(t));
      if (!s) return std::printf("save: %s\n", s.error().message.c_str()), 1;
      msrs = s->msrs.size();
      t = Clock::now();
      auto st = restore_vcpu_state(*vcpu, *s, *caps);
      restore.push_back(ms_since(t));
      if (!st) return std::printf("restore: %s\n", st.error().message.c_str()), 1;
    }
    std::printf("vCPU state (%s, irqchip %s, %zu MSRs): save %.3f ms + restore %.3f ms = %.3f ms per vCPU (median of 300)\n",
                backend_name(kvm->backend()), irqchip ? "on" : "off", msrs, median(save), median(restore),
                median(save) + median(restore));
  }
  return 0;
}

std::unique_ptr<Machine> guest(uint64_t ram, bool irqchip, std::function<void(unsigned, pid_t)> on_exit = {}) {
  auto kvm = Kvm::open();
  MachineConfig c;
  c.ram_size = ram;
  c.irqchip = irqchip;
  c.timeout_s = 10;
  c.on_vcpu_exit = std::move(on_exit);
  VcpuConfig vc;
  vc.cpuid = *kvm->supported_cpuid();
  c.vcpus.push_back(vc);
  auto m = Machine::create(std::move(c));
  if (!m) {
    std::printf("machine: %s\n", m.error().message.c_str());
    return nullptr;
  }
  if (!(*m)->load_code(kFirstOut).ok()) return nullptr;
  return std::move(*m);
}

void fill(const GuestMemory& mem, bool dense) {
  std::mt19937_64 rng(42);
  auto* p = reinterpret_cast<uint64_t*>(mem.host() + BootLayout::kData);
  size_t words = (mem.size() - BootLayout::kData) / 8;
  for (size_t i = 0; i < words; i += dense ? 1 : 64 * 1024) p[i] = rng();  // sparse: one word per 512 KiB
}

int bench_memory(const std::string& dir) {
  constexpr uint64_t kRam = 256ull << 20;
  for (bool dense : {true, false})
    for (bool durable : {false, true}) {
      auto m = guest(kRam, false);
      if (!m) return 1;
      fill(m->memory(), dense);
      SnapshotInfo info;
      info.tool_version = "bench";
      info.durable = durable;
      std::string path = dir + "/bench.snap";
      // A fresh file: replacing an old one would add freeing its 256 MiB of page cache.
      std::filesystem::remove(default_memory_path(path));
      auto st = snapshot_machine(*m, path, info, AfterSnapshot::kStayPaused);
      if (!st) return std::printf("snapshot: %s\n", st.error().message.c_str()), 1;
      std::printf("256 MiB guest, %s memory%s: memory file %.1f ms = %.2f GB/s (checksum + write), state file %.2f ms "
                  "(%llu bytes), total %.1f ms\n",
                  dense ? "dense" : "sparse", durable ? ", fdatasync" : "", st->memory_ms,
                  kRam / st->memory_ms / 1e6, st->file_ms, static_cast<unsigned long long>(st->state_bytes), st->total_ms);
    }
  return 0;
}

int bench_restore(const std::string& dir) {
  std::string path = dir + "/bench.snap";
  for (bool irqchip : {false, true}) {
    {
      auto m = guest(256ull << 20, irqchip);
      if (!m) return 1;
      fill(m->memory(), true);
      SnapshotInfo info;
      info.tool_version = "bench";
      if (auto st = snapshot_machine(*m, path, info, AfterSnapshot::kStayPaused); !st)
        return std::printf("snapshot: %s\n", st.error().message.c_str()), 1;
    }
    for (bool verify : {false, true}) {
      std::vector<double> lat, create;
      for (int i = 0; i < 15; ++i) {
        std::atomic<int64_t> ran_at{0};
        RestoreOptions o;
        o.verify_memory = verify;
        o.timeout_s = 10;
        o.on_vcpu_exit = [&](unsigned, pid_t) { ran_at = Clock::now().time_since_epoch().count(); };
        auto t0 = Clock::now();
        auto r = restore_machine(path, o);
        if (!r) return std::printf("restore: %s\n", r.error().message.c_str()), 1;
        auto rep = r->machine->run();
        if (!rep || !rep->all_done()) return std::printf("restored guest did not run to its first out\n"), 1;
        lat.push_back(std::chrono::duration<double, std::milli>(Clock::duration(ran_at.load()) - t0.time_since_epoch()).count());
        create.push_back(r->create_ms);
      }
      std::printf("restore-to-running, 256 MiB lazily mapped, irqchip %s%s: %.2f ms (median of 15; VM + state %.2f ms)\n",
                  irqchip ? "on" : "off", verify ? ", memory checksum verified first" : "", median(lat), median(create));
    }
  }
  std::filesystem::remove(path);
  std::filesystem::remove(default_memory_path(path));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = argc > 1 ? argv[1] : tmp && *tmp ? tmp : "/tmp";
  std::filesystem::create_directories(dir);
  if (int rc = bench_vcpu_state()) return rc;
  if (!Kvm::open().ok()) return 0;
  if (int rc = bench_memory(dir)) return rc;
  return bench_restore(dir);
}
