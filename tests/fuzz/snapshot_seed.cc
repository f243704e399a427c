// Writes the fuzz_snapshot seeds (tests/fuzz/corpus/fuzz_snapshot/): encode_snapshot of small
// synthetic guests, each followed by the mode byte fuzz_snapshot strips (0: leave the frame as is).
// Usage: snapshot_seed OUT_DIR. Built in the fuzz configuration only; not run by CI.
#include <cstdio>
#include <string>

#include "cpumodel/migrate/snapshot.h"

namespace {

cpumodel::Snapshot make(unsigned vcpus, bool full) {
  cpumodel::Snapshot s;
  s.header.tool_version = "0.1.0";
  s.header.cpu_spec = "Haswell-noTSX,+aes";
  s.header.cpu_model = "Haswell-v2";
  s.header.smp = "2,maxcpus=2,sockets=1,dies=1,cores=2,threads=1";
  s.header.cpus = s.header.maxcpus = vcpus;
  s.header.sockets = s.header.dies = s.header.threads = 1;
  s.header.cores = vcpus;
  s.header.source.vendor = "GenuineIntel";
  s.header.source.signature = 0x306c3;
  s.header.source.kvm_backend = "kvm_intel";
  s.header.source.tsc_khz = 2400000;
  s.header.memory = {"guest.snap.mem", 64u << 20, 0, "xxh64", 0x1234567890abcdefull};
  s.header.guest = "probe";
  s.state.vm.irqchip = full;
  for (unsigned i = 0; i < vcpus; ++i) {
    cpumodel::VcpuState v;
    v.index = v.apic_id = i;
    v.regs.rip = 0x100000 + i;
    v.regs.rflags = 2;
    v.sregs.cr0 = 0x80050033;
    v.sregs.efer = 0xd01;
    v.cpuid.set(0, 0, {0xd, 0x756e6547, 0x6c65746e, 0x49656e69});
    v.cpuid.set(1, 0, {0x306c3, i << 24, 0xfffa3203, 0x1f8bfbff});
    v.cpuid.set(0xd, 0, {0x7, 0x340, 0x340, 0});
    v.msrs = {{0x10, 12345}, {0x1b, 0xfee00900}, {0xc0000080, 0xd01}};
    v.tsc_khz = 2400000;
    if (full) {
      v.lapic.assign(cpumodel::kLapicSize, 0);
      v.xsave.assign(cpumodel::kXsaveLegacySize, 0);
      v.xcrs = std::vector<std::pair<uint32_t, uint64_t>>{{0, 7}};
      v.events = kvm_vcpu_events{};
      v.debugregs = kvm_debugregs{};
    }
    s.state.vcpus.push_back(std::move(v));
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const struct {
    const char* name;
    unsigned vcpus;
    bool full;
  } seeds[] = {{"one-vcpu", 1, false}, {"two-vcpus-full", 2, true}};
  for (const auto& seed : seeds) {
    std::string bytes = cpumodel::encode_snapshot(make(seed.vcpus, seed.full)) + '\0';
    std::FILE* f = std::fopen((std::string(argv[1]) + "/" + seed.name).c_str(), "wb");
    if (!f) return 1;
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
  return 0;
}
