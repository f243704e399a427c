// The snapshot codec: checksums against published vectors, a full round trip, every refusal the
// reader owes (wrong magic, newer major, truncation, checksum mismatch) and the corruption sweep:
// every single-byte corruption and every truncation of a real-sized snapshot is refused with a
// sentence, and none crashes the reader (CI runs this under ASan + UBSan too).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "cpumodel/cpuid/features.h"
#include "cpumodel/cpuid/profile.h"
#include "cpumodel/migrate/snapshot.h"

namespace cpumodel {
namespace {

std::vector<uint8_t> pattern(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 7 + 3);
  return v;
}

std::string sha_hex(std::span<const uint8_t> b) { return hex_bytes(sha256(b)); }
std::span<const uint8_t> bytes_of(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

// FIPS 180-4 examples ("abc", the empty string, a million 'a') and lengths around the padding
// boundaries, whose digests come from Python's hashlib.sha256 (OpenSSL).
TEST(Checksum, Sha256MatchesPublishedVectors) {
  EXPECT_EQ(sha_hex(bytes_of("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha_hex(bytes_of("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  std::string million(1000000, 'a');
  EXPECT_EQ(sha_hex(bytes_of(million)), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  const std::pair<size_t, const char*> kByLength[] = {
      {55, "e7313d333c272e639f790978283f9eb392e843d0f29b7016828bb1daa4aac70b"},
      {56, "4324d65f3c103567f5589c710bc08f8523f929a9272e3af36fc968e52abc6c27"},
      {63, "81c80242132f230c3bd41b3e63bbcff16107339549214a99614ff26664625055"},
      {64, "39e3d7b6b5d075d37d053ad89b24b41bef4f3c29760c84447cab3f3be1882241"},
      {65, "aacca6ff74fdbb296d165a45cecfa04e5127bc008770fbbdd48006f2d2fae95e"},
      {119, "9ce7368e4daf32341631b492e80359dc9f594b48453cd0dd5bf0b19279cc177e"},
      {120, "7836b787757e95e58b3ca5aec90b1b004e8deba1e50e9675af9cabf1a13a04b5"},
  };
  for (const auto& [n, want] : kByLength) EXPECT_EQ(sha_hex(pattern(n)), want) << n << " bytes";
}

// Digests from xxhsum 0.8.1 (Debian package xxhash, `xxhsum -H1`), of the byte pattern i*7+3.
TEST(Checksum, Xxh64MatchesXxhsum) {
  EXPECT_EQ(xxh64({}), 0xef46db3751d8e999ull);
  EXPECT_EQ(xxh64(bytes_of("abc")), 0x44bc2cf5ad770999ull);
  const std::pair<size_t, uint64_t> kByLength[] = {
      {1, 0x1f25c8d0bc1f4bb6}, {3, 0x31d2363f52e564c9},  {4, 0x9bb64b7d66ee9fda},  {7, 0x9a7b149959ce60d8},
      {8, 0xdab99d95c6f90092}, {31, 0xa2aa5f33cc4a6119}, {32, 0x23c3c17ef790fd97}, {33, 0x50a7cfc7ba588784},
      {63, 0x5e3e54b431c7493c}, {64, 0x0eb64b3ef6eeb01f}, {100, 0xa61f8d4c170fe531}, {1000, 0x5f235fa033f1a3fb},
  };
  for (const auto& [n, want] : kByLength) EXPECT_EQ(xxh64(pattern(n)), want) << n << " bytes";
}

// A snapshot with every field set to something other than its default.
Snapshot sample(unsigned vcpus = 2) {
  Snapshot s;
  SnapshotHeader& h = s.header;
  h.tool_version = "0.1.0";
  h.cpu_spec = "Haswell-noTSX,-avx";
  h.cpu_model = "Haswell-v2";
  h.smp = "2,maxcpus=2,sockets=1,dies=1,cores=2,threads=1";
  h.cpus = h.maxcpus = 2;
  h.sockets = h.dies = h.threads = 1;
  h.cores = 2;
  h.source = {"GenuineIntel", 0x806f8, "Intel(R) Xeon(R) Processor", "0x1", "Linux 6.1 x86_64", "kvm_pvm", "h1",
              2000000, true, {0x10, 0x174, 0x6e0}};
  h.created_unix_s = 1763800000;
  h.memory = {"guest.snap.mem", 2 << 20, 0, "xxh64", 0x0123456789abcdefull};
  h.cpu_mode = 0;
  h.guest = "test";
  h.unsupported = {"KVM_GET_NESTED_STATE: Invalid argument (errno 22)"};
  for (unsigned i = 0; i < vcpus; ++i) {
    VcpuState v;
    v.index = i;
    v.apic_id = i * 2;
    v.mp_state = i ? 3 : 0;
    v.regs.rip = 0x8000 + i;
    v.regs.rax = 0x1111111111111111ull * (i + 1);
    v.regs.r15 = 0xfedcba9876543210ull;
    v.regs.rflags = 0x246;
    v.sregs.cr0 = 0x80050033;
    v.sregs.cr4 = 0x406e0;
    v.sregs.efer = 0xd01;
    v.sregs.apic_base = 0xfee00900;
    v.sregs.cs = {0, 0xffffffff, 0x8, 0xb, 1, 0, 0, 1, 1, 1, 0, 0, 0};
    v.sregs.gdt = {0x1000, 0x27, {}};
    v.sregs.interrupt_bitmap[1] = 1ull << 3;
    v.xsave = pattern(4096);
    v.xcrs = std::vector<std::pair<uint32_t, uint64_t>>{{0, 0x7}};
    v.msrs = {{0x10, 123456789}, {0x174, 0x10}, {0x6e0, 987654321}};
    v.lapic = pattern(kLapicSize);
    kvm_vcpu_events ev{};
    ev.exception.injected = 1;
    ev.exception.nr = 14;
    ev.exception.error_code = 2;
    ev.interrupt.shadow = 1;
    ev.nmi.masked = 1;
    ev.sipi_vector = 0x9a;
    ev.flags = KVM_VCPUEVENT_VALID_SHADOW;
    ev.exception_payload = 0xdead000;
    v.events = ev;
    kvm_debugregs d{};
    d.db[2] = 0x4000;
    d.dr6 = 0xffff0ff0;
    d.dr7 = 0x400;
    v.debugregs = d;
    v.cpuid.set(0, 0, {0xd, 0x756e6547, 0x6c65746e, 0x49656e69});
    v.cpuid.set(1, 0, {0x306c3, (i * 2) << 24, 0x7ffafbbf, 0xbfebfbff});
    v.cpuid.set(0xd, 1, {1, 0, 0, 0});
    v.tsc_khz = 2000000;
    v.unsupported = {"KVM_GET_XSAVE2: Invalid argument (errno 22)"};
    s.state.vcpus.push_back(std::move(v));
  }
  VmState& vm = s.state.vm;
  vm.irqchip = true;
  vm.pic_master.imr = 0xfb;
  vm.pic_master.irq_base = 0x20;
  vm.pic_slave.irq_base = 0x28;
  vm.pic_slave.elcr_mask = 0xde;
  vm.ioapic.base_address = 0xfec00000;
  vm.ioapic.id = 1;
  vm.ioapic.redirtbl[4].bits = 0x10034;
  kvm_pit_state2 pit{};
  pit.channels[0].count = 65536;
  pit.channels[0].mode = 2;
  pit.channels[2].count_load_time = -42;
  pit.flags = 1;
  vm.pit = pit;
  kvm_clock_data c{};
  c.clock = 123456789012ull;
  vm.clock = c;
  return s;
}

template <class T>
bool same_bytes(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

TEST(SnapshotCodec, RoundTripsEveryField) {
  Snapshot s = sample();
  std::string bytes = encode_snapshot(s);
  auto d = decode_snapshot(bytes, "sample");
  ASSERT_TRUE(d.ok()) << d.error().message;
  const SnapshotHeader &a = s.header, &b = d->header;
  EXPECT_EQ(b.major, kSnapshotMajor);
  EXPECT_EQ(b.minor, kSnapshotMinor);
  EXPECT_EQ(a.tool_version, b.tool_version);
  EXPECT_EQ(a.cpu_spec, b.cpu_spec);
  EXPECT_EQ(a.cpu_model, b.cpu_model);
  EXPECT_EQ(a.smp, b.smp);
  EXPECT_EQ(a.cores, b.cores);
  EXPECT_EQ(a.source, b.source);
  EXPECT_EQ(a.memory, b.memory);
  EXPECT_EQ(a.created_unix_s, b.created_unix_s);
  EXPECT_EQ(a.unsupported, b.unsupported);
  ASSERT_EQ(d->state.vcpus.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const VcpuState &x = s.state.vcpus[i], &y = d->state.vcpus[i];
    EXPECT_EQ(x.index, y.index);
    EXPECT_EQ(x.apic_id, y.apic_id);
    EXPECT_EQ(x.mp_state, y.mp_state);
    EXPECT_TRUE(same_bytes(x.regs, y.regs));
    EXPECT_TRUE(same_bytes(x.sregs, y.sregs));
    EXPECT_EQ(x.xsave, y.xsave);
    EXPECT_EQ(x.xcrs, y.xcrs);
    EXPECT_EQ(x.msrs, y.msrs);
    EXPECT_EQ(x.lapic, y.lapic);
    ASSERT_TRUE(y.events && y.debugregs);
    EXPECT_TRUE(same_bytes(*x.events, *y.events));
    EXPECT_TRUE(same_bytes(*x.debugregs, *y.debugregs));
    EXPECT_EQ(x.cpuid, y.cpuid);
    EXPECT_EQ(x.tsc_khz, y.tsc_khz);
    EXPECT_EQ(x.unsupported, y.unsupported);
  }
  const VmState &v = s.state.vm, &w = d->state.vm;
  EXPECT_TRUE(w.irqchip);
  EXPECT_TRUE(same_bytes(v.pic_master, w.pic_master));
  EXPECT_TRUE(same_bytes(v.pic_slave, w.pic_slave));
  EXPECT_TRUE(same_bytes(v.ioapic, w.ioapic));
  ASSERT_TRUE(w.pit && w.clock);
  EXPECT_TRUE(same_bytes(*v.pit, *w.pit));
  EXPECT_EQ(v.clock->clock, w.clock->clock);
  // Absent parts stay absent.
  Snapshot bare = sample(1);
  bare.state.vcpus[0].events.reset();
  bare.state.vcpus[0].xcrs.reset();
  bare.state.vcpus[0].lapic.clear();
  bare.state.vm = VmState{};
  auto e = decode_snapshot(encode_snapshot(bare), "bare");
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_FALSE(e->state.vcpus[0].events || e->state.vcpus[0].xcrs || e->state.vm.pit || e->state.vm.clock);
  EXPECT_TRUE(e->state.vcpus[0].lapic.empty());
  EXPECT_EQ(e->state.vcpus[0].xcr0(), 1u) << "no XCRs saved reads as x87 only";
}

// A Linux guest's snapshot: port devices and RAM above 4 GiB in a second region.
Snapshot linux_sample() {
  Snapshot s = sample();
  s.header.guest = "linux";
  s.header.memory = {"l.snap.mem", 3ull << 30, 0, "xxh64", 0x1111};
  s.header.more_memory = {{"l.snap.mem.1", 1ull << 30, 4ull << 30, "xxh64", 0x2222}};
  DeviceState d;
  d.serial = {0x05, 0x03, 0x0b, 0x5a, 0x01, 0x00, 0xc7, true, true, {'l', 's', '\n'}};
  d.i8042 = {{0x55}, 0x60, 0x47};
  d.cmos.index = 0x0f;
  d.cmos.ram[0x0f] = 0xab;
  d.cmos.ram[0x7f] = 0x01;
  d.pm = {0x0100, 0x0100, 0x0001, true};
  s.state.devices = d;
  return s;
}

TEST(SnapshotCodec, RoundTripsLinuxDevicesAndMemoryRegions) {
  Snapshot s = linux_sample();
  auto d = decode_snapshot(encode_snapshot(s), "linux");
  ASSERT_TRUE(d.ok()) << d.error().message;
  ASSERT_TRUE(d->state.devices.has_value());
  EXPECT_EQ(*d->state.devices, *s.state.devices);
  EXPECT_EQ(d->header.memory, s.header.memory);
  EXPECT_EQ(d->header.more_memory, s.header.more_memory);
  auto regions = memory_regions(d->header);
  ASSERT_EQ(regions.size(), 2u);
  EXPECT_EQ(regions[1]->guest_base, 4ull << 30);
  // A probe guest's snapshot has neither.
  auto p = decode_snapshot(encode_snapshot(sample()), "probe");
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->state.devices.has_value());
  EXPECT_TRUE(p->header.more_memory.empty());
}

TEST(SnapshotCodec, RefusesDeviceStateAndRegionsThatCannotBeRight) {
  // Re-encoded with a bad value: the SHA-256 is right, so the check is the reader's own.
  Snapshot s = linux_sample();
  s.header.more_memory[0].guest_base = 1ull << 30;  // inside the first region
  auto d = decode_snapshot(encode_snapshot(s), "overlap");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().message.find("overlaps the one before it"), std::string::npos) << d.error().message;
  s = linux_sample();
  s.header.more_memory[0].size = 0;
  EXPECT_FALSE(decode_snapshot(encode_snapshot(s), "empty").ok());
}

TEST(SnapshotInspect, SaysWhichDevicesAndEveryMemoryRegion) {
  Snapshot s = linux_sample();
  std::string text = snapshot_text(s);
  EXPECT_NE(text.find("devices  UART 8250 (3 input bytes queued), i8042, CMOS RTC, ACPI PM (SCI raised)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("l.snap.mem.1, 1073741824 bytes at guest-physical 0x100000000"), std::string::npos) << text;
  std::string json = snapshot_json(s);
  EXPECT_NE(json.find("\"serial_input_queued\": 3"), std::string::npos) << json;
  EXPECT_NE(json.find("\"guest_base\": 4294967296"), std::string::npos) << json;
  EXPECT_NE(snapshot_json(sample()).find("\"devices\": null"), std::string::npos);
}

TEST(SnapshotCodec, FramingIsAsDocumented) {
  std::string bytes = encode_snapshot(sample());
  ASSERT_GT(bytes.size(), kSnapshotPreamble + kSnapshotChecksumSize);
  EXPECT_EQ(bytes.substr(0, 8), std::string("CPMSNAP\n"));
  EXPECT_EQ(static_cast<uint8_t>(bytes[8]), kSnapshotMajor);
  uint64_t len = 0;
  std::memcpy(&len, bytes.data() + 16, 8);
  EXPECT_EQ(len + kSnapshotPreamble + kSnapshotChecksumSize, bytes.size());
  auto digest = sha256(bytes_of(std::string_view(bytes).substr(0, bytes.size() - 32)));
  EXPECT_EQ(0, std::memcmp(digest.data(), bytes.data() + bytes.size() - 32, 32));
}

std::string refusal(std::string_view bytes) {
  auto d = decode_snapshot(bytes, "snap");
  return d.ok() ? "" : d.error().message;
}

TEST(SnapshotCodec, RefusesWithASentenceSayingWhich) {
  std::string good = encode_snapshot(sample());
  std::string bad = good;
  bad[0] = 'X';
  EXPECT_NE(refusal(bad).find("not a cpumodel snapshot (wrong magic"), std::string::npos) << refusal(bad);
  EXPECT_NE(refusal("").find("wrong magic"), std::string::npos);
  EXPECT_NE(refusal("---\nname: h1\n").find("wrong magic"), std::string::npos) << "a YAML profile is not a snapshot";
  // A newer major version: refused before anything else is trusted (even with a bad checksum).
  bad = good;
  bad[8] = static_cast<char>(kSnapshotMajor + 1);
  EXPECT_NE(refusal(bad).find("snapshot format 2." + std::to_string(kSnapshotMinor) + " is newer than this cpumodel reads"),
            std::string::npos)
      << refusal(bad);
  // A newer minor version is read (additive changes), but here the checksum covers it.
  bad = good;
  bad[10] = 5;
  EXPECT_NE(refusal(bad).find("checksum mismatch"), std::string::npos) << refusal(bad);
  EXPECT_NE(refusal(good.substr(0, good.size() - 1)).find("truncated"), std::string::npos);
  EXPECT_NE(refusal(good.substr(0, 12)).find("truncated"), std::string::npos);
  EXPECT_NE(refusal(good.substr(0, 5)).find("truncated"), std::string::npos) << "a prefix of the magic is a cut file";
  EXPECT_NE(refusal(good + "x").find("1 unexpected bytes after the checksum"), std::string::npos);
  bad = good;
  bad[kSnapshotPreamble + 20] ^= 0x01;
  EXPECT_NE(refusal(bad).find("checksum mismatch: the file is corrupted"), std::string::npos) << refusal(bad);
  // A payload that passes the checksum but is not the message (a forged or buggy writer).
  std::string forged = std::string(kSnapshotMagic, 8) + std::string("\x01\x00\x00\x00\x00\x00\x00\x00", 8);
  std::string junk = "\xff\xff\xff";
  for (int i = 0; i < 8; ++i) forged += static_cast<char>(i == 0 ? junk.size() : 0);
  forged += junk;
  auto digest = sha256(bytes_of(forged));
  forged.append(reinterpret_cast<const char*>(digest.data()), 32);
  EXPECT_NE(refusal(forged).find("does not parse"), std::string::npos) << refusal(forged);
}

// Every byte of the file flipped (all bits) and every bit of the preamble flipped, one at a time;
// every truncation: each is refused with one of the reader's sentences, never accepted, never a crash.
TEST(SnapshotCodec, CorruptionSweepEveryByteIsRefused) {
  const std::string good = encode_snapshot(sample(1));  // one vCPU: ~6 KB, every byte costs a SHA-256
  const char* const kSentences[] = {"wrong magic", "truncated", "newer than this cpumodel", "not a released format",
                                    "checksum mismatch", "unexpected bytes after the checksum"};
  auto check = [&](const std::string& bytes, const std::string& what) {
    std::string why = refusal(bytes);
    ASSERT_FALSE(why.empty()) << what << " was accepted";
    bool known = false;
    for (const char* s : kSentences) known = known || why.find(s) != std::string::npos;
    EXPECT_TRUE(known) << what << ": " << why;
    EXPECT_EQ(why.find('\n'), std::string::npos) << "one line";
  };
  std::string bytes = good;
  for (size_t i = 0; i < good.size(); ++i) {
    bytes[i] = static_cast<char>(~good[i]);
    check(bytes, "byte " + std::to_string(i) + " flipped");
    bytes[i] = good[i];
  }
  for (size_t i = 0; i < kSnapshotPreamble * 8; ++i) {
    bytes[i / 8] = static_cast<char>(good[i / 8] ^ (1 << (i % 8)));
    check(bytes, "bit " + std::to_string(i) + " flipped");
    bytes[i / 8] = good[i / 8];
  }
  for (size_t n = 0; n < good.size(); ++n) check(good.substr(0, n), "cut at " + std::to_string(n));
  std::printf("%zu-byte snapshot: %zu byte flips, %zu bit flips, %zu truncations refused\n", good.size(), good.size(),
              kSnapshotPreamble * 8, good.size());
}

class SnapshotFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("cpumodel-snapfile-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(SnapshotFiles, WritesAtomicallyAndReadsBack) {
  std::string path = dir_ + "/a.snap";
  ASSERT_TRUE(write_snapshot(path, sample()).ok());
  auto r = read_snapshot(path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->state.vcpus.size(), 2u);
  // Replaced whole, and no temporary file left behind.
  ASSERT_TRUE(write_snapshot(path, sample(1)).ok());
  EXPECT_EQ(read_snapshot(path)->state.vcpus.size(), 1u);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_), std::filesystem::directory_iterator()), 1);
  // A failed write leaves nothing.
  EXPECT_FALSE(write_snapshot(dir_ + "/no/such/dir/b.snap", sample()).ok());
  auto missing = read_snapshot(dir_ + "/none.snap");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("none.snap"), std::string::npos);
}

TEST_F(SnapshotFiles, MemoryFileIsCheckedBySizeAndChecksum) {
  std::vector<uint8_t> ram(1 << 20, 0);
  for (size_t i = 0; i < 4096; ++i) ram[300000 + i] = static_cast<uint8_t>(i);  // mostly zero: holes
  std::string snap = dir_ + "/g.snap";
  auto ref = write_memory_file(default_memory_path(snap), ram, 0, false);
  ASSERT_TRUE(ref.ok()) << ref.error().message;
  EXPECT_EQ(ref->file, "g.snap.mem");
  EXPECT_EQ(ref->size, ram.size());
  EXPECT_EQ(ref->checksum, xxh64(ram));
  EXPECT_TRUE(verify_memory_file(snap, *ref, true).ok());
  std::ifstream in(memory_path_of(snap, *ref), std::ios::binary);
  std::vector<uint8_t> back((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(back, ram) << "holes read back as zeros";
  {
    std::fstream f(memory_path_of(snap, *ref), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(300010);
    f.put('\x7f');
  }
  EXPECT_TRUE(verify_memory_file(snap, *ref, false).ok()) << "size only";
  auto bad = verify_memory_file(snap, *ref, true);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("memory checksum mismatch"), std::string::npos) << bad.error().message;
  std::filesystem::resize_file(memory_path_of(snap, *ref), 4096);
  auto cut = verify_memory_file(snap, *ref, false);
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.error().message.find("has 4096 bytes, the snapshot says 1048576"), std::string::npos)
      << cut.error().message;
}

TEST(SnapshotMsrs, TableNamesRealFeaturesAndHasNoOverlap) {
  auto table = state_msr_table();
  for (size_t i = 0; i < table.size(); ++i) {
    std::istringstream in(table[i].needs);
    for (std::string name; in >> name;) EXPECT_TRUE(find_feature(name).has_value()) << table[i].name << ": " << name;
    for (size_t j = i + 1; j < table.size(); ++j) {
      bool overlap = table[i].index < table[j].index + table[j].count && table[j].index < table[i].index + table[i].count;
      EXPECT_FALSE(overlap) << table[i].name << " and " << table[j].name;
    }
  }
  EXPECT_EQ(describe_msr(0x6e0), "MSR 6E0H (IA32_TSC_DEADLINE)");
  EXPECT_EQ(describe_msr(0x203), "MSR 203H (IA32_MTRR_PHYSBASE0..PHYSMASK7 +3)");
  EXPECT_EQ(describe_msr(0x12345), "MSR 12345H");
}

TEST(SnapshotMsrs, WhatToSaveFollowsKvmsListAndTheGuestCpuid) {
  // The list kvm_pvm reported here (KVM_GET_MSR_INDEX_LIST, 43 MSRs; see the report).
  const std::vector<uint32_t> kvm = {0x174, 0x175, 0x176, 0xc0000081, 0xc0000083, 0xc0000102, 0xc0000084, 0xc0000082,
                                     0x10, 0x277, 0xc0010117, 0x3a, 0x48, 0x122, 0x1d9, 0x1db, 0x1dc, 0x1dd, 0x1de,
                                     0x12, 0x11, 0x4b564d01, 0x4b564d00, 0x4b564d02, 0x4b564d03, 0x4b564d04,
                                     0x4b564d06, 0x4b564d07, 0x3b, 0x6e0, 0x10a, 0x345, 0x1a0, 0x17a, 0x17b, 0x34,
                                     0xce, 0x140, 0xc001011f, 0x1fc, 0x8b, 0xc0010015, 0x4b564d05};
  CpuidTable bare;  // no features: only what KVM emulates for every guest
  auto none = msrs_to_save(kvm, bare);
  EXPECT_EQ(none.front(), 0x10u) << "IA32_TSC first";
  EXPECT_EQ(std::count(none.begin(), none.end(), 0x6e0u), 0) << "no tsc-deadline, no deadline MSR";
  EXPECT_EQ(std::count(none.begin(), none.end(), 0xc0000082u), 0) << "no lm, no LSTAR";
  EXPECT_EQ(std::count(none.begin(), none.end(), 0x200u), 0) << "no mtrr, no MTRRs";
  EXPECT_EQ(std::count(none.begin(), none.end(), 0x1dbu), 0) << "LBR MSRs are not in the table";
  CpuidTable t;
  t.set(0, 0, {0xd, 0, 0, 0});
  t.set(1, 0, {0, 0, 1u << 24, 1u << 12});        // tsc-deadline, mtrr
  t.set(0x80000000, 0, {0x80000001, 0, 0, 0});
  t.set(0x80000001, 0, {0, 0, 0, 1u << 29});      // lm
  auto some = msrs_to_save(kvm, t);
  EXPECT_EQ(some.back(), 0x6e0u) << "IA32_TSC_DEADLINE last, after IA32_TSC";
  EXPECT_EQ(std::count(some.begin(), some.end(), 0xc0000082u), 1);
  EXPECT_EQ(std::count(some.begin(), some.end(), 0x2ffu), 1) << "MTRRs come from the CPUID, not KVM's list";
  EXPECT_EQ(std::count(some.begin(), some.end(), 0x20fu), 1);
}

TEST(SnapshotInspect, SaysModeRipXcr0MsrsAndCpuid) {
  Snapshot s = sample();
  std::string text = snapshot_text(s);
  EXPECT_NE(text.find("Haswell-v2 (spec \"Haswell-noTSX,-avx\")"), std::string::npos) << text;
  EXPECT_NE(text.find("64-bit long mode"), std::string::npos) << text;
  EXPECT_NE(text.find("0x0000000000008001"), std::string::npos) << "vCPU 1's RIP";
  EXPECT_NE(text.find("x87 sse avx"), std::string::npos) << text;
  EXPECT_NE(text.find("not saved: KVM_GET_NESTED_STATE"), std::string::npos) << text;
  std::string json = snapshot_json(s);
  EXPECT_NE(json.find("\"rip\": 32768"), std::string::npos) << json;
  EXPECT_NE(json.find("\"msr_count\": 3"), std::string::npos);
  EXPECT_NE(json.find("\"xcr0_components\": [\n        \"x87\",\n        \"sse\",\n        \"avx\""), std::string::npos)
      << json;
  EXPECT_NE(json.find("\"mode\": \"64-bit long mode\""), std::string::npos);
  VcpuState real;
  EXPECT_EQ(vcpu_mode(real), "real mode");
  real.sregs.cr0 = 1;
  real.sregs.cs.db = 1;
  EXPECT_EQ(vcpu_mode(real), "32-bit protected mode");
}

}  // namespace
}  // namespace cpumodel
