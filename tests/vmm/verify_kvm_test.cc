// verify on the real /dev/kvm: what we report equals what the probe saw, and the CLI contract
// (exit codes 0/1, 2 for bad pins, 3 without KVM). Skipped where /dev/kvm is missing.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cpuid.h>

#include <cstdio>
#include <map>
#include <set>
#include <tuple>

#include "cpumodel/vmm/guest_abi.h"
#include "cpumodel/vmm/probe.h"
#include "cpumodel/vmm/verify.h"

namespace cpumodel::vmm {
namespace {

bool have_kvm() { return ::access("/dev/kvm", R_OK | W_OK) == 0; }
#define REQUIRE_KVM() \
  if (!have_kvm()) GTEST_SKIP() << "/dev/kvm is missing or not accessible"

using BitKey = std::tuple<uint32_t, uint32_t, int, unsigned>;  // leaf, subleaf, reg, bit

// Bits KVM derives from vCPU state (verify.h); the in-test comparison leaves them out.
bool dynamic_bit(uint32_t leaf, uint32_t subleaf, Reg reg, unsigned bit) {
  if (leaf == 1) return (reg == Reg::kEcx && bit == 27) || (reg == Reg::kEdx && bit == 9) || (reg == Reg::kEbx && bit >= 24);
  if (leaf == 7 && subleaf == 0) return reg == Reg::kEcx && bit == 4;
  if (leaf == 0xd && subleaf <= 1) return reg == Reg::kEbx;
  if (leaf == 0xb || leaf == 0x1f) return reg == Reg::kEdx;
  return false;
}

CpuidTable test_table() {
  auto kvm = Kvm::open();
  EXPECT_TRUE(kvm.ok());
  auto t = kvm->supported_cpuid();
  EXPECT_TRUE(t.ok());
  CpuidTable table = *t;
  // Hide things the host has: on kvm_pvm leaves 1 and 7 come back as the host's anyway.
  table.reg(7, 0, Reg::kEbx) = 0;
  table.set_bit(1, 0, Reg::kEcx, 20, false);       // sse4.2
  table.set_bit(0x80000001, 0, Reg::kEcx, 0, false);  // lahf-lm
  return table;
}

TEST(VerifyKvm, ReportedDifferencesAreWhatTheProbeSaw) {
  REQUIRE_KVM();
  CpuidTable t = test_table();
  std::vector<CpuidTable> tables = {t};
  std::vector<uint32_t> ids = {0};
  auto run = run_probe(tables, ids, {});
  ASSERT_TRUE(run.ok()) << run.error().message;
  const auto& recs = run->records[0];
  const VcpuReport& vr = run->machine.vcpus[0];
  VcpuCpuidState state;
  state.cr4 = vr.cr4;
  state.xcr0 = vr.xcr0;
  state.apic_base = vr.apic_base;
  CpuidTable host = host_cpuid_for(t);
  auto reported = compare_probe(t, recs, state, run->machine.backend, &host);

  // Directly: every bit of every record of a leaf in the table that differs from the table.
  std::set<BitKey> direct, ours;
  std::set<CpuidKey> once;
  for (const auto& r : recs) {
    if (!t.has(r.leaf, r.subleaf) || !once.insert({r.leaf, r.subleaf}).second) continue;
    for (Reg reg : {Reg::kEax, Reg::kEbx, Reg::kEcx, Reg::kEdx})
      for (unsigned bit = 0; bit < 32; ++bit)
        if (((r.regs().get(reg) ^ t.get(r.leaf, r.subleaf).get(reg)) >> bit & 1) &&
            !dynamic_bit(r.leaf, r.subleaf, reg, bit))
          direct.insert({r.leaf, r.subleaf, static_cast<int>(reg), bit});
  }
  for (const auto& d : reported)
    if (t.has(d.leaf, d.subleaf) && !dynamic_bit(d.leaf, d.subleaf, d.reg, d.bit))
      ours.insert({d.leaf, d.subleaf, static_cast<int>(d.reg), d.bit});
  EXPECT_EQ(ours, direct);
  // Leaf 0 and 0x80000001 are honoured by every backend: no difference there.
  for (const auto& d : reported) {
    EXPECT_NE(d.leaf, 0u) << d.where;
    EXPECT_NE(d.leaf, 0x80000001u) << d.where;
  }
  if (run->machine.backend == Backend::kPvm) {
    // kvm_pvm forces (near) host values into leaf 7: the guest saw what the cpuid instruction
    // says here, give or take a few bits (ENVIRONMENT.md), although the table has 07H:EBX = 0.
    unsigned a, b, c, d;
    __cpuid_count(7, 0, a, b, c, d);
    const ProbeRecord* seen7 = nullptr;
    for (const auto& r : recs)
      if (r.leaf == 7 && r.subleaf == 0) seen7 = &r;
    ASSERT_NE(seen7, nullptr);
    EXPECT_LE(__builtin_popcount(seen7->ebx ^ b), 4) << std::hex << seen7->ebx << " vs host " << b;
    size_t avx2 = 0;
    for (const auto& diff : reported)
      if (diff.leaf == 7 && diff.reg == Reg::kEbx && diff.bit == 5) {
        ++avx2;
        EXPECT_EQ(diff.where, "CPUID.07H:EBX.avx2 [bit 5]");
        EXPECT_EQ(diff.cause, (b >> 5 & 1) ? "forced by kvm_pvm" : "changed by kvm_pvm");
      }
    EXPECT_EQ(avx2, (seen7->ebx >> 5) & 1);
  }
}

size_t open_fds() {
  size_t n = 0;
  for (int fd = 0; fd < 1024; ++fd) n += ::fcntl(fd, F_GETFD) != -1;
  return n;
}

// `verify` makes the VM ahead, on another thread (prepare_vm). One that fits is adopted, and the
// guest sees the same as in a VM made in place; one that does not fit (other APIC IDs, other RAM)
// is closed and the run goes on in a fresh VM. No descriptor outlives either.
TEST(VerifyKvm, APreparedVmIsAdoptedWhenItFitsAndClosedWhenNot) {
  REQUIRE_KVM();
  CpuidTable t = test_table();
  std::vector<CpuidTable> tables = {t, t};
  std::vector<uint32_t> ids = {0, 1};
  size_t fds = open_fds();
  auto plain = run_probe(tables, ids, {});
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_FALSE(plain->machine.prepared_ahead);

  ProbeOptions fits;
  auto p = prepare_vm(fits.device, probe_ram_size(2), ids, false);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_GT(open_fds(), fds);  // /dev/kvm, the VM, two vCPUs
  fits.prepared = *p;
  p->reset();
  auto ahead = run_probe(tables, ids, fits);
  ASSERT_TRUE(ahead.ok()) << ahead.error().message;
  EXPECT_TRUE(ahead->machine.prepared_ahead);
  fits.prepared.reset();
  for (size_t v = 0; v < 2; ++v) {
    ASSERT_EQ(ahead->records[v].size(), plain->records[v].size()) << "vCPU " << v;
    for (size_t i = 0; i < plain->records[v].size(); ++i) {
      EXPECT_EQ(ahead->records[v][i].leaf, plain->records[v][i].leaf);
      EXPECT_EQ(ahead->records[v][i].subleaf, plain->records[v][i].subleaf);
    }
  }
  EXPECT_EQ(open_fds(), fds);

  // Used once, it is empty: a second run with the same options makes its own VM.
  {
    ProbeOptions again;
    auto q = prepare_vm(again.device, probe_ram_size(2), ids, false);
    ASSERT_TRUE(q.ok()) << q.error().message;
    again.prepared = *q;
    auto first = run_probe(tables, ids, again);
    ASSERT_TRUE(first.ok()) << first.error().message;
    EXPECT_TRUE(first->machine.prepared_ahead);
    auto second = run_probe(tables, ids, again);
    ASSERT_TRUE(second.ok()) << second.error().message;
    EXPECT_FALSE(second->machine.prepared_ahead);
    again.prepared.reset();
    q->reset();
    EXPECT_EQ(open_fds(), fds);
  }
  // More RAM than the probe asks is adopted; other APIC IDs, or too little RAM, are not.
  {
    ProbeOptions bigger;
    auto q = prepare_vm(bigger.device, probe_ram_size(2) + (2u << 20), ids, false);
    ASSERT_TRUE(q.ok()) << q.error().message;
    bigger.prepared = std::move(*q);
    auto run = run_probe(tables, ids, bigger);
    ASSERT_TRUE(run.ok()) << run.error().message;
    EXPECT_TRUE(run->machine.prepared_ahead);
  }
  for (auto [ram, apic_ids] : {std::pair{probe_ram_size(2), std::vector<uint32_t>{0, 2}},
                               std::pair{uint64_t{64} << 10, ids}}) {
    ProbeOptions other;
    auto q = prepare_vm(other.device, ram, apic_ids, false);
    ASSERT_TRUE(q.ok()) << q.error().message;
    other.prepared = std::move(*q);
    size_t held = open_fds();
    auto run = run_probe(tables, ids, other);
    ASSERT_TRUE(run.ok()) << run.error().message;
    EXPECT_FALSE(run->machine.prepared_ahead);
    EXPECT_TRUE(run->machine.all_done());
    EXPECT_LT(open_fds(), held);  // closed by the run, though `other` still holds it
    other.prepared.reset();
    EXPECT_EQ(open_fds(), fds);
  }
}

// The probe runs its queries in unrolled blocks of CPUMODEL_PROBE_UNROLL (guest_abi.h), starting
// the first block part-way. Subleaves of leaf 4 added (KVM takes at most 256 entries), and for the
// last case the basic range raised to 0xff, so that the queries come to one block exactly, one
// more, and more than two blocks: every query is run once, in order, with the registers KVM was
// given, in both modes.
TEST(VerifyKvm, QueriesBeyondOneUnrolledBlockAreEachRunOnceInOrder) {
  REQUIRE_KVM();
  constexpr size_t kUnroll = CPUMODEL_PROBE_UNROLL;
  auto leaf4 = [](uint32_t sub) { return CpuidRegs{0x4000 + sub, 0x5000 + sub, sub, 0x70000 + sub}; };
  for (bool lm : {true, false}) {
    CpuidTable base = test_table();
    base.set_bit(0x80000001, 0, Reg::kEdx, 29, lm);
    for (size_t want : {kUnroll, kUnroll + 1, 2 * kUnroll + 1}) {
      CpuidTable t = base;
      if (want > 2 * kUnroll) t.reg(0, 0, Reg::kEax) = 0xff;
      size_t queries = 0;
      for (uint32_t sub = 0; sub < 180; ++sub) {
        t.set(4, sub, leaf4(sub));
        std::vector<CpuidTable> one = {t};
        queries = probe_plan(one).queries.size();
        if (queries >= want) break;
      }
      if (want <= 2 * kUnroll) {
        ASSERT_EQ(queries, want) << "lm " << lm;
      }
      ASSERT_GE(queries, want);
      ASSERT_LE(t.size(), 256u);
      std::vector<CpuidTable> tables = {t, t};
      std::vector<uint32_t> ids = {0, 1};
      ProbePlan plan = probe_plan(tables);
      auto run = run_probe(tables, ids, {});
      ASSERT_TRUE(run.ok()) << run.error().message;
      EXPECT_EQ(run->machine.mode, lm ? CpuMode::kLong64 : CpuMode::kProtected32);
      for (size_t v = 0; v < 2; ++v) {
        const auto& recs = run->records[v];
        ASSERT_GE(recs.size(), plan.queries.size()) << "vCPU " << v;
        for (size_t q = 0; q < plan.queries.size(); ++q) {
          ASSERT_EQ(recs[q].leaf, plan.queries[q].leaf) << "record " << q << " of " << queries;
          ASSERT_EQ(recs[q].subleaf, plan.queries[q].subleaf) << "record " << q << " of " << queries;
          if (recs[q].leaf == 4 && t.has(4, recs[q].subleaf)) {
            EXPECT_EQ(recs[q].regs(), t.get(4, recs[q].subleaf)) << "subleaf " << recs[q].subleaf;
          }
        }
        // After the queries only the range scans, each a leaf the queries did not have.
        std::set<CpuidKey> queried(plan.queries.begin(), plan.queries.end());
        for (size_t r = plan.queries.size(); r < recs.size(); ++r)
          EXPECT_FALSE(queried.count(CpuidKey{recs[r].leaf, recs[r].subleaf})) << "record " << r;
      }
    }
  }
}

// `verify` hands the probe VM to a Teardown once the records are read, and compares and prints
// while it is destroyed. The records are the same; the VM's descriptors are gone once wait()
// (or the destructor) returns.
TEST(VerifyKvm, ATeardownDestroysTheProbeVmOnItsOwnThreadAndWaitsForIt) {
  REQUIRE_KVM();
  CpuidTable t = test_table();
  std::vector<CpuidTable> tables = {t, t};
  std::vector<uint32_t> ids = {0, 1};
  size_t fds = open_fds();
  auto plain = run_probe(tables, ids, {});
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_EQ(open_fds(), fds);
  for (int round = 0; round < 3; ++round) {
    Teardown teardown;
    ProbeOptions o;
    o.teardown = &teardown;
    auto run = run_probe(tables, ids, o);
    ASSERT_TRUE(run.ok()) << run.error().message;
    ASSERT_EQ(run->records.size(), plain->records.size());
    for (size_t v = 0; v < 2; ++v) {
      ASSERT_EQ(run->records[v].size(), plain->records[v].size()) << "vCPU " << v;
      for (size_t i = 0; i < plain->records[v].size(); ++i) {
        EXPECT_EQ(run->records[v][i].leaf, plain->records[v][i].leaf);
        EXPECT_EQ(run->records[v][i].eax, plain->records[v][i].eax);
        EXPECT_EQ(run->records[v][i].edx, plain->records[v][i].edx);
      }
    }
    if (round == 0) {
      teardown.wait();
      EXPECT_EQ(open_fds(), fds);
      teardown.wait();  // nothing left: returns at once
    }
    // Rounds 1 and 2: the destructor waits.
  }
  EXPECT_EQ(open_fds(), fds);
  Teardown idle;
  idle.dispose(nullptr);  // nothing to destroy
  idle.wait();
  EXPECT_EQ(open_fds(), fds);
}

TEST(VerifyKvm, EveryVcpuIsReportedWithItsThreadAndPin) {
  REQUIRE_KVM();
  CpuidTable t = test_table();
  CpuSet online = online_cpus();
  GuestCpuid g;
  for (unsigned i = 0; i < 2; ++i) {
    VcpuPlace p;
    p.index = i;
    p.apic_id = i * 2;  // not the index: each vCPU must see its own
    p.core = i;
    g.vcpus.push_back(p);
    CpuidTable ti = t;
    ti.reg(1, 0, Reg::kEbx) = (ti.reg(1, 0, Reg::kEbx) & 0x00ffffffu) | (p.apic_id << 24);
    g.tables.push_back(ti);
  }
  VerifyOptions o;
  o.pins[1].add(online.cpus().back());
  auto r = verify_guest(g, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->backend, detect_backend());
  ASSERT_EQ(r->vcpus.size(), 2u);
  bool any = false;
  for (const auto& v : r->vcpus) {
    EXPECT_GT(v.tid, 0);
    EXPECT_GE(v.host_cpu, 0);
    EXPECT_GT(v.leaves_probed, t.size() / 2);
    for (const auto& d : v.differences) EXPECT_FALSE(d.leaf == 1 && d.reg == Reg::kEbx && d.bit >= 24) << d.where;
    any = any || !v.differences.empty();
  }
  EXPECT_EQ(r->identical, !any);
  EXPECT_FALSE(r->vcpus[0].pinned);
  EXPECT_TRUE(r->vcpus[1].pinned);
  EXPECT_EQ(r->vcpus[1].host_cpu, static_cast<int>(online.cpus().back()));

  VerifyOptions bad;
  bad.pins[2].add(0);
  auto no_vcpu = verify_guest(g, bad);
  ASSERT_FALSE(no_vcpu.ok());
  EXPECT_EQ(no_vcpu.error().exit_code, kExitUsage);
}

// --- the command ---

struct Cli {
  int code = -1;
  std::string out;
};

Cli cpumodel(const std::string& args, const std::string& env = "") {
  std::string cmd = env + " " CPUMODEL_BINARY " " + args + " 2>&1";
  Cli r;
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(VerifyCli, NoKvmDeviceIsExit3) {
  Cli r = cpumodel("verify --cpu qemu64", "CPUMODEL_KVM_DEVICE=/nonexistent/kvm");
  EXPECT_EQ(r.code, 3) << r.out;
  EXPECT_NE(r.out.find("cpumodel: error: /nonexistent/kvm: no such device"), std::string::npos) << r.out;
  r = cpumodel("verify --cpu qemu64 --kvm-device /dev/null");
  EXPECT_EQ(r.code, 3) << r.out;
}

TEST(VerifyCli, BadPinsAndAffinityAreExit2) {
  for (const char* args : {"--smp 2 --pin 2:0", "--pin 0:4000", "--pin 0:x", "--affinity 4000", "--affinity 1-0",
                           "--timeout 0"}) {
    Cli r = cpumodel(std::string("verify --cpu qemu64 ") + args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
    EXPECT_EQ(r.out.rfind("cpumodel: error: ", 0), 0u) << args << "\n" << r.out;
  }
}

TEST(VerifyCli, JsonVerdictMatchesExitCode) {
  REQUIRE_KVM();
  Cli r = cpumodel("verify --cpu qemu64 --smp 2 --json --pin 0:0", "");
  ASSERT_TRUE(r.code == 0 || r.code == 1) << r.out;
  EXPECT_NE(r.out.find(std::string("\"backend\": \"") + backend_name(detect_backend()) + "\""), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find(r.code == 0 ? "\"identical\": true" : "\"identical\": false"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"pinned\": \"0\""), std::string::npos) << r.out;
  if (detect_backend() == Backend::kPvm) {
    EXPECT_EQ(r.code, 1) << "kvm_pvm forces host leaves 1/7 onto qemu64";
    EXPECT_NE(r.out.find("forced by kvm_pvm"), std::string::npos);
  }
}

}  // namespace
}  // namespace cpumodel::vmm
