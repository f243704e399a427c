// The Linux boot protocol writer and the firmware tables, on plain memory (no /dev/kvm).
// Truth: Documentation/arch/x86/boot.rst (setup header offsets, zero page layout via the kernel's
// own uapi <asm/bootparam.h>), Intel MP spec 1.4 (checksums, entry layouts), ACPI 6.x (RSDP/SDT
// checksums, FADT/MADT offsets), and a real Debian bzImage read independently here.
#include <asm/bootparam.h>
#include <dirent.h>
#include <elf.h>
#include <unistd.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <cstring>
#include <fstream>
#include <iterator>

#include "cpumodel/cpuid/guest_cpuid.h"
#include "cpumodel/vmm/linux_boot.h"
#include "cpumodel/vmm/platform_tables.h"
#include "cpumodel/vmm/x86_boot.h"

#include "debian_kernel.h"

namespace cpumodel::vmm {
namespace {

using cpumodel::testing::debian_kernel;

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

template <class T>
T at(const std::vector<uint8_t>& b, size_t off) {
  T v;
  std::memcpy(&v, b.data() + off, sizeof v);
  return v;
}

// A synthetic bzImage: boot sector + 4 setup sectors + `payload` bytes, with a 2.15 header.
std::vector<uint8_t> fake_bzimage(size_t payload = 4096, uint16_t version = 0x20f, uint16_t xloadflags = 0x1,
                                  uint8_t loadflags = 0x1) {
  std::vector<uint8_t> img(5 * 512 + payload, 0x90);
  auto put = [&](size_t off, auto v) { std::memcpy(img.data() + off, &v, sizeof v); };
  img[0x1f1] = 4;  // setup_sects
  put(0x1fe, uint16_t{0xaa55});
  img[0x200] = 0xeb;
  img[0x201] = 0x66;  // header ends at 0x268
  std::memcpy(img.data() + 0x202, "HdrS", 4);
  put(0x206, version);
  img[0x211] = loadflags;
  put(0x214, uint32_t{0x100000});
  put(0x22c, uint32_t{0x7fffffff});
  put(0x230, uint32_t{0x200000});
  img[0x234] = 1;
  put(0x236, xloadflags);
  put(0x238, uint32_t{2047});
  put(0x258, uint64_t{0x1000000});
  put(0x260, uint32_t{0x400000});
  return img;
}

TEST(SetupHeader, ParsesTheDebianKernel) {
  std::string path = debian_kernel();
  if (path.empty()) GTEST_SKIP() << "no readable /boot/vmlinuz-* (apt-get install linux-image-amd64)";
  auto img = read_file(path);
  auto h = parse_setup_header(img, path);
  ASSERT_TRUE(h.ok()) << h.error().message;
  // Independent reads at boot.rst's offsets.
  EXPECT_EQ(h->version, at<uint16_t>(img, 0x206));
  EXPECT_GE(h->version, kMinBootProtocol);
  EXPECT_EQ(h->setup_size, (size_t{img[0x1f1]} + 1) * 512);
  EXPECT_EQ(h->setup_size + h->kernel_size, img.size());
  EXPECT_EQ(h->code32_start, 0x100000u);  // every bzImage
  EXPECT_TRUE(h->xloadflags & 1);         // x86_64 kernels have the 64-bit entry
  EXPECT_EQ(h->init_size, at<uint32_t>(img, 0x260));
  EXPECT_GE(h->init_size, h->kernel_size);
  EXPECT_EQ(h->kernel_alignment & (h->kernel_alignment - 1), 0u) << "a power of two";
  EXPECT_EQ(h->pref_address, at<uint64_t>(img, 0x258));
  // syssize (0x1f4) counts 16-byte paragraphs of the protected-mode part; a signed kernel (Debian's,
  // for Secure Boot) has its PE signature appended after that.
  uint64_t syssize = uint64_t{at<uint32_t>(img, 0x1f4)} * 16;
  EXPECT_LE(syssize, (h->kernel_size + 15) / 16 * 16);
  EXPECT_LT(h->kernel_size - std::min<uint64_t>(syssize, h->kernel_size), 64u * 1024);
}

TEST(SetupHeader, RejectsWhatIsNotA64BitBzImage) {
  auto expect_error = [](const std::vector<uint8_t>& img, const std::string& words) {
    auto h = parse_setup_header(img, "k.img");
    ASSERT_FALSE(h.ok()) << words;
    EXPECT_EQ(h.error().exit_code, kExitUsage);
    EXPECT_NE(h.error().message.find("k.img: "), std::string::npos) << h.error().message;
    EXPECT_NE(h.error().message.find(words), std::string::npos) << h.error().message;
  };
  expect_error({}, "too short");
  std::vector<uint8_t> elf(8192, 0);
  std::memcpy(elf.data(), "\x7f" "ELF", 4);
  expect_error(elf, "no \"HdrS\" magic");
  expect_error(fake_bzimage(4096, 0x0206), "boot protocol 2.6 is too old");
  expect_error(fake_bzimage(4096, 0x020f, 0x0), "32-bit kernel");
  expect_error(fake_bzimage(4096, 0x020f, 0x1, 0x0), "zImage");
  auto truncated = fake_bzimage(0);
  truncated.resize(0x300);
  expect_error(truncated, "truncated");
  EXPECT_TRUE(parse_setup_header(fake_bzimage(), "k.img").ok());
}

TEST(E820, LowRamHoleAndHighRam) {
  for (uint64_t ram : {64ull << 20, 256ull << 20, 3ull << 30, 5ull << 30}) {
    auto map = linux_e820(ram);
    uint64_t ram_total = 0, prev_end = 0;
    for (const auto& e : map) {
      EXPECT_GE(e.addr, prev_end) << "sorted, no overlap";
      prev_end = e.addr + e.size;
      if (e.type == E820Type::kRam) ram_total += e.size;
      // Nothing is RAM in the MMIO hole below 4 GiB or in the legacy VGA/BIOS hole.
      if (e.type == E820Type::kRam) {
        EXPECT_FALSE(e.addr < 0xfec00000 + 0x1400000ull && e.addr + e.size > LinuxLayout::kLowRamMax);
        EXPECT_FALSE(e.addr < 0x100000 && e.addr + e.size > 0xa0000);
      }
    }
    EXPECT_EQ(ram_total, ram - (LinuxLayout::kHighMemory - LinuxLayout::kEbda)) << ram;
    EXPECT_EQ(map.front().addr, 0u);
    EXPECT_EQ(map.front().type, E820Type::kRam) << "low RAM for the SMP trampoline";
  }
  auto big = linux_e820(5ull << 30);
  EXPECT_EQ(big.back().addr, 1ull << 32);
  EXPECT_EQ(big.back().size, 2ull << 30);
}

TEST(LinuxBoot, PlansTheInitrdAsHighAsItMayGo) {
  auto img = fake_bzimage();
  auto h = parse_setup_header(img, "k");
  ASSERT_TRUE(h.ok());
  std::vector<uint8_t> initrd(3 * 4096 + 17);
  LinuxBootConfig c{img, "k", initrd, "i", "console=ttyS0", 64ull << 20, 0};
  auto p = plan_linux_boot(*h, c);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->entry, 0x100000u + 0x200);
  EXPECT_EQ(p->initrd_addr % 4096, 0u);
  EXPECT_LE(p->initrd_addr + initrd.size(), 64ull << 20);
  EXPECT_GT(p->initrd_addr + 4096 + initrd.size(), 64ull << 20) << "no higher page-aligned place";
  EXPECT_GE(p->initrd_addr, p->kernel_end);
  // Runs at pref_address (16 MiB) and needs init_size (4 MiB) there.
  EXPECT_EQ(p->kernel_end, 0x1000000u + 0x400000u);
  // initrd_addr_max bounds it on big guests.
  c.ram_size = 3ull << 30;
  std::memcpy(img.data() + 0x22c, "\xff\xff\xff\x0f", 4);  // 256 MiB - 1
  h = parse_setup_header(img, "k");
  p = plan_linux_boot(*h, c);
  ASSERT_TRUE(p.ok());
  EXPECT_LE(p->initrd_addr + initrd.size(), 256ull << 20);
}

TEST(LinuxBoot, SaysWhatDoesNotFit) {
  auto img = fake_bzimage();
  auto h = parse_setup_header(img, "k");
  ASSERT_TRUE(h.ok());
  LinuxBootConfig c{img, "k", {}, "i", "", 16ull << 20, 0};
  auto p = plan_linux_boot(*h, c);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("raise -m"), std::string::npos) << p.error().message;
  std::vector<uint8_t> initrd(40ull << 20);
  c = LinuxBootConfig{img, "k", initrd, "initrd.img", "", 48ull << 20, 0};
  p = plan_linux_boot(*h, c);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("initrd.img: 40 MiB does not fit"), std::string::npos) << p.error().message;
  c = LinuxBootConfig{img, "k", {}, "i", std::string(3000, 'x'), 64ull << 20, 0};
  p = plan_linux_boot(*h, c);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("at most 2047"), std::string::npos) << p.error().message;
}

TEST(LinuxBoot, WritesKernelZeroPageAndBootTables) {
  auto img = fake_bzimage(8192);
  for (size_t i = 5 * 512; i < img.size(); ++i) img[i] = static_cast<uint8_t>(i * 7);
  std::vector<uint8_t> initrd(5000, 0xab);
  constexpr uint64_t kRam = 32ull << 20;
  auto ram = GuestRam::allocate(0, kRam);
  ASSERT_TRUE(ram.ok());
  const GuestMemory& mem = ram->memory();
  LinuxBootConfig c{img, "k", initrd, "i", "console=ttyS0 quiet", kRam, 0xe0000};
  auto plan = write_linux_boot(mem, c);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(0, std::memcmp(mem.host() + 0x100000, img.data() + 5 * 512, 8192));
  EXPECT_EQ(0, std::memcmp(mem.host() + plan->initrd_addr, initrd.data(), initrd.size()));
  auto bp = mem.read_obj<boot_params>(plan->zero_page);
  ASSERT_TRUE(bp.ok());
  EXPECT_EQ(bp->hdr.header, 0x53726448u);  // "HdrS"
  EXPECT_EQ(bp->hdr.version, 0x20f);
  EXPECT_EQ(bp->hdr.type_of_loader, 0xff);
  EXPECT_EQ(bp->hdr.ramdisk_image, plan->initrd_addr);
  EXPECT_EQ(bp->hdr.ramdisk_size, initrd.size());
  EXPECT_EQ(bp->acpi_rsdp_addr, 0xe0000u);
  EXPECT_STREQ(reinterpret_cast<const char*>(mem.host() + bp->hdr.cmd_line_ptr), "console=ttyS0 quiet");
  auto e820 = linux_e820(kRam);
  ASSERT_EQ(bp->e820_entries, e820.size());
  for (size_t i = 0; i < e820.size(); ++i) {
    EXPECT_EQ(bp->e820_table[i].addr, e820[i].addr);
    EXPECT_EQ(bp->e820_table[i].size, e820[i].size);
    EXPECT_EQ(bp->e820_table[i].type, static_cast<uint32_t>(e820[i].type));
  }
  // The 64-bit entry, the zero page and the command line are identity-mapped.
  for (uint64_t va : {plan->entry, plan->zero_page, plan->cmdline_addr}) {
    auto pa = translate(mem, BootLayout::kPml4, va);
    ASSERT_TRUE(pa.ok()) << pa.error().message;
    EXPECT_EQ(*pa, va);
  }
}

// A synthetic ELF vmlinux: two PT_LOAD segments (text at 16 MiB; data at 18 MiB whose last 8 KiB
// are bss, not in the file) and a PT_NOTE, entry at 16 MiB + 0x40.
struct FakeVmlinux {
  std::vector<uint8_t> bytes;
  Elf64_Ehdr& eh() { return *reinterpret_cast<Elf64_Ehdr*>(bytes.data()); }
  Elf64_Phdr& ph(unsigned i) { return *reinterpret_cast<Elf64_Phdr*>(bytes.data() + sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr)); }
};
FakeVmlinux fake_vmlinux() {
  FakeVmlinux v;
  v.bytes.assign(0x3000, 0);
  Elf64_Ehdr& e = v.eh();
  std::memcpy(e.e_ident, ELFMAG, SELFMAG);
  e.e_ident[EI_CLASS] = ELFCLASS64;
  e.e_ident[EI_DATA] = ELFDATA2LSB;
  e.e_ident[EI_VERSION] = EV_CURRENT;
  e.e_type = ET_EXEC;
  e.e_machine = EM_X86_64;
  e.e_version = EV_CURRENT;
  e.e_entry = 0x1000040;
  e.e_phoff = sizeof(Elf64_Ehdr);
  e.e_ehsize = sizeof(Elf64_Ehdr);
  e.e_phentsize = sizeof(Elf64_Phdr);
  e.e_phnum = 3;
  v.ph(0) = Elf64_Phdr{PT_LOAD, PF_R | PF_X, 0x1000, 0xffffffff81000000, 0x1000000, 0x1000, 0x1000, 0x1000};
  v.ph(1) = Elf64_Phdr{PT_NOTE, PF_R, 0x1800, 0xffffffff81000800, 0x1000800, 0x10, 0x10, 4};
  v.ph(2) = Elf64_Phdr{PT_LOAD, PF_R | PF_W, 0x2000, 0xffffffff81200000, 0x1200000, 0x1000, 0x3000, 0x1000};
  for (size_t i = 0x1000; i < v.bytes.size(); ++i) v.bytes[i] = static_cast<uint8_t>(i * 13 + 1);
  return v;
}

TEST(Vmlinux, ParsesSegmentsAndEntry) {
  auto v = fake_vmlinux();
  EXPECT_TRUE(is_elf(v.bytes));
  EXPECT_FALSE(is_elf(fake_bzimage()));
  auto img = parse_vmlinux(v.bytes, "vmlinux");
  ASSERT_TRUE(img.ok()) << img.error().message;
  EXPECT_EQ(img->entry, 0x1000040u);
  ASSERT_EQ(img->segments.size(), 2u);  // the note is not loaded
  EXPECT_EQ(img->segments[1].paddr, 0x1200000u);
  EXPECT_EQ(img->segments[1].filesz, 0x1000u);
  EXPECT_EQ(img->segments[1].memsz, 0x3000u);
}

TEST(Vmlinux, RefusesWhatCannotBeLoadedNamingIt) {
  struct Case {
    const char* says;
    std::function<void(FakeVmlinux&)> spoil;
  } cases[] = {
      {"a 32-bit ELF", [](FakeVmlinux& v) { v.eh().e_ident[EI_CLASS] = ELFCLASS32; }},
      {"a big-endian ELF", [](FakeVmlinux& v) { v.eh().e_ident[EI_DATA] = ELFDATA2MSB; }},
      {"machine 183, not x86-64", [](FakeVmlinux& v) { v.eh().e_machine = EM_AARCH64; }},
      {"not an executable vmlinux", [](FakeVmlinux& v) { v.eh().e_type = ET_DYN; }},
      {"program headers lie outside the file", [](FakeVmlinux& v) { v.eh().e_phnum = 500; }},
      {"PT_LOAD 1 lies outside the file", [](FakeVmlinux& v) { v.ph(2).p_filesz = 0x10000; }},
      {"more file bytes than memory", [](FakeVmlinux& v) { v.ph(0).p_memsz = 0x10; }},
      {"wraps around", [](FakeVmlinux& v) { v.ph(2).p_paddr = ~0ull - 0x100; }},
      {"is in no loaded segment", [](FakeVmlinux& v) { v.eh().e_entry = 0x500; }},
      {"no PT_LOAD segment", [](FakeVmlinux& v) { v.ph(0).p_type = PT_NULL; v.ph(2).p_type = PT_NULL; }},
      {"PT_LOAD segments overlap at 0x1000800", [](FakeVmlinux& v) { v.ph(2).p_paddr = 0x1000800; }},
  };
  for (const auto& c : cases) {
    auto v = fake_vmlinux();
    c.spoil(v);
    auto img = parse_vmlinux(v.bytes, "vmlinux");
    ASSERT_FALSE(img.ok()) << c.says;
    EXPECT_NE(img.error().message.find(c.says), std::string::npos) << img.error().message;
    EXPECT_EQ(img.error().message.rfind("vmlinux: ", 0), 0u) << img.error().message;
  }
  auto whole = fake_vmlinux().bytes;
  std::vector<uint8_t> tiny(whole.begin(), whole.begin() + 20);
  auto t = parse_vmlinux(tiny, "v");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("truncated ELF header"), std::string::npos) << t.error().message;
}

TEST(Vmlinux, WritesSegmentsZeroesBssAndFillsTheLoaderFields) {
  auto v = fake_vmlinux();
  std::vector<uint8_t> initrd(5000, 0xab);
  constexpr uint64_t kRam = 64ull << 20;
  auto ram = GuestRam::allocate(0, kRam);
  ASSERT_TRUE(ram.ok());
  const GuestMemory& mem = ram->memory();
  ASSERT_TRUE(mem.fill(0x1201000, 0x5a, 0x2000).ok());  // the bss must come out zero, not stale
  LinuxBootConfig c{v.bytes, "vmlinux", initrd, "i", "console=ttyS0", kRam, 0xe0000};
  auto plan = write_linux_boot(mem, c);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_TRUE(plan->elf);
  EXPECT_EQ(plan->entry, 0x1000040u);
  EXPECT_EQ(plan->kernel_addr, 0x1000000u);
  EXPECT_EQ(plan->kernel_end, 0x1203000u);
  EXPECT_EQ(0, std::memcmp(mem.host() + 0x1000000, v.bytes.data() + 0x1000, 0x1000));
  EXPECT_EQ(0, std::memcmp(mem.host() + 0x1200000, v.bytes.data() + 0x2000, 0x1000));
  EXPECT_TRUE(std::all_of(mem.host() + 0x1201000, mem.host() + 0x1203000, [](uint8_t b) { return b == 0; }));
  EXPECT_GE(plan->initrd_addr, plan->kernel_end);
  EXPECT_EQ(0, std::memcmp(mem.host() + plan->initrd_addr, initrd.data(), initrd.size()));
  auto bp = mem.read_obj<boot_params>(plan->zero_page);
  ASSERT_TRUE(bp.ok());
  EXPECT_EQ(bp->hdr.boot_flag, 0xaa55);
  EXPECT_EQ(bp->hdr.header, 0x53726448u);
  EXPECT_EQ(bp->hdr.type_of_loader, 0xff);
  EXPECT_EQ(bp->hdr.kernel_alignment, 0x1000000u);
  EXPECT_EQ(bp->hdr.ramdisk_image, plan->initrd_addr);
  EXPECT_STREQ(reinterpret_cast<const char*>(mem.host() + bp->hdr.cmd_line_ptr), "console=ttyS0");
  EXPECT_EQ(bp->e820_entries, linux_e820(kRam).size());
  auto pa = translate(mem, BootLayout::kPml4, plan->entry);
  ASSERT_TRUE(pa.ok());
  EXPECT_EQ(*pa, plan->entry);
  // Too little RAM for the segments, and too long a command line, are said as for a bzImage.
  c.ram_size = 16ull << 20;
  auto small = plan_kernel_boot(c);
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.error().message.find("does not fit in 16 MiB"), std::string::npos) << small.error().message;
  c.ram_size = kRam;
  c.cmdline = std::string(3000, 'x');
  EXPECT_FALSE(plan_kernel_boot(c).ok());
  c.cmdline = "console=ttyS0";
  // startup_64 needs a 2 MiB boundary, and the boot page tables map the first GiB only.
  auto spoilt = [&](auto spoil, const char* says) {
    auto w = fake_vmlinux();
    spoil(w);
    LinuxBootConfig cc{w.bytes, "vmlinux", {}, "", "console=ttyS0", 2ull << 30, 0};
    auto r = plan_kernel_boot(cc);
    ASSERT_FALSE(r.ok()) << says;
    EXPECT_NE(r.error().message.find(says), std::string::npos) << r.error().message;
  };
  spoilt([](FakeVmlinux& w) { w.ph(0).p_paddr = 0x1001000; w.eh().e_entry = 0x1001040; }, "not on a 2 MiB boundary");
  spoilt([](FakeVmlinux& w) { w.ph(2).p_paddr = 0x40000000; w.eh().e_entry = 0x40000040; },
         "above the first GiB");
}

// Debian's own kernel, uncompressed by the rig's script: its entry is startup_64 at 16 MiB.
TEST(Vmlinux, PlansDebiansUncompressedKernel) {
  std::string k = debian_kernel();
  if (k.empty()) GTEST_SKIP() << "no /boot/vmlinuz-* (apt-get install linux-image-amd64)";
  std::string out = "/tmp/cpumodel-vmlinux-test-" + std::to_string(::getpid());
  if (std::system((std::string(CPUMODEL_EXTRACT_VMLINUX " ") + k + " " + out + " 2>/dev/null").c_str()) != 0)
    GTEST_SKIP() << "cannot unpack " << k << " (xz-utils missing?)";
  auto bytes = read_file(out);
  ::unlink(out.c_str());
  auto img = parse_vmlinux(bytes, "vmlinux");
  ASSERT_TRUE(img.ok()) << img.error().message;
  EXPECT_TRUE(std::any_of(img->segments.begin(), img->segments.end(), [&](const VmlinuxSegment& s) {
    return img->entry >= s.paddr && img->entry < s.paddr + s.memsz;
  }));  // startup_64, at CONFIG_PHYSICAL_START (0x1000000 in Debian's)
  EXPECT_GE(img->segments.size(), 2u);
  LinuxBootConfig c{bytes, "vmlinux", {}, "", "console=ttyS0", 256ull << 20, 0};
  auto plan = plan_kernel_boot(c);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_TRUE(plan->elf);
  c.ram_size = 32ull << 20;
  EXPECT_FALSE(plan_kernel_boot(c).ok());
}

TEST(LinuxBoot, ParsesQemuMemorySizes) {
  EXPECT_EQ(*parse_memory_size("512"), 512ull << 20);
  EXPECT_EQ(*parse_memory_size("512M"), 512ull << 20);
  EXPECT_EQ(*parse_memory_size("2G"), 2ull << 30);
  EXPECT_EQ(*parse_memory_size("size=1G"), 1ull << 30);
  EXPECT_EQ(*parse_memory_size("65536k"), 64ull << 20);
  for (const char* bad : {"", "M", "1x", "1", "-5", "99999999999G"}) EXPECT_FALSE(parse_memory_size(bad).ok()) << bad;
}

// --- MP table and ACPI ---

PlatformConfig topology(const char* smp_text, std::vector<uint32_t>* ids = nullptr) {
  auto smp = parse_smp(smp_text);
  EXPECT_TRUE(smp.ok());
  PlatformConfig pc;
  for (const auto& p : vcpu_places(*smp)) {
    pc.cpus.push_back({p.apic_id, 0x306c3, 0x178bfbff});
    if (ids) ids->push_back(p.apic_id);
  }
  return pc;
}

struct MpProcessor {
  uint8_t apic_id, flags;
};

std::vector<MpProcessor> mp_processors(const uint8_t* cfg, uint16_t count, unsigned* ioints = nullptr) {
  static const size_t kSize[] = {20, 8, 8, 8, 8};
  std::vector<MpProcessor> out;
  const uint8_t* p = cfg + 44;
  for (uint16_t i = 0; i < count; ++i) {
    if (p[0] == 0) out.push_back({p[1], p[3]});
    if (p[0] == 3 && ioints) ++*ioints;
    p += kSize[p[0]];
  }
  return out;
}

TEST(MpTable, ChecksumsAndProcessorsOfTwoSocketsTwoCoresTwoThreads) {
  std::vector<uint32_t> ids;
  PlatformConfig pc = topology("8,sockets=2,cores=2,threads=2", &ids);
  // QEMU's layout for 2x2x2: thread 1 bit, core 1 bit, package above: IDs 0..7.
  EXPECT_EQ(ids, (std::vector<uint32_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  std::vector<uint8_t> buf(64 * 1024);
  GuestMemory mem(buf, 0xf0000);
  auto end = write_mp_table(mem, 0xf0000, pc);
  ASSERT_TRUE(end.ok()) << end.error().message;
  const uint8_t* fp = buf.data();
  EXPECT_EQ(0, std::memcmp(fp, "_MP_", 4));
  EXPECT_EQ(byte_sum({fp, 16}), 0) << "floating pointer checksum";
  EXPECT_EQ(fp[8], 1);  // length in 16-byte units
  EXPECT_EQ(fp[9], 4);  // spec 1.4
  uint32_t cfg_addr;
  std::memcpy(&cfg_addr, fp + 4, 4);
  const uint8_t* cfg = buf.data() + (cfg_addr - 0xf0000);
  EXPECT_EQ(0, std::memcmp(cfg, "PCMP", 4));
  uint16_t len, count;
  std::memcpy(&len, cfg + 4, 2);
  std::memcpy(&count, cfg + 34, 2);
  EXPECT_EQ(byte_sum({cfg, len}), 0) << "configuration table checksum";
  EXPECT_EQ(cfg_addr + len, *end);
  unsigned ioints = 0;
  auto procs = mp_processors(cfg, count, &ioints);
  ASSERT_EQ(procs.size(), 8u);
  for (size_t i = 0; i < procs.size(); ++i) {
    EXPECT_EQ(procs[i].apic_id, ids[i]);
    EXPECT_EQ(procs[i].flags, i == 0 ? 3 : 1) << "enabled, BSP only on vCPU 0";
  }
  EXPECT_EQ(ioints, 15u) << "ISA IRQs 0-15 but the cascade";
}

TEST(MpTable, SparseApicIdsOfThreeCoresAndTooLargeIds) {
  std::vector<uint32_t> ids;
  PlatformConfig pc = topology("6,sockets=2,cores=3", &ids);
  // 3 cores need 2 bits: the second package starts at APIC ID 4.
  EXPECT_EQ(ids, (std::vector<uint32_t>{0, 1, 2, 4, 5, 6}));
  EXPECT_EQ(pc.ioapic_id(), 7);
  std::vector<uint8_t> buf(4096);
  GuestMemory mem(buf, 0xf0000);
  ASSERT_TRUE(write_mp_table(mem, 0xf0000, pc).ok());
  uint16_t count;
  std::memcpy(&count, buf.data() + 16 + 34, 2);
  auto procs = mp_processors(buf.data() + 16, count);
  ASSERT_EQ(procs.size(), 6u);
  EXPECT_EQ(procs[3].apic_id, 4);
  pc.cpus.push_back({300, 0, 0});
  EXPECT_FALSE(write_mp_table(mem, 0xf0000, pc).ok());
}

struct Sdt {
  std::string sig;
  uint32_t length = 0;
  const uint8_t* p = nullptr;
};

Sdt sdt_at(const std::vector<uint8_t>& buf, uint64_t base, uint64_t addr) {
  Sdt t;
  t.p = buf.data() + (addr - base);
  t.sig.assign(reinterpret_cast<const char*>(t.p), 4);
  std::memcpy(&t.length, t.p + 4, 4);
  return t;
}

TEST(Acpi, RsdpXsdtFadtDsdtMadt) {
  std::vector<uint32_t> ids;
  PlatformConfig pc = topology("8,sockets=2,cores=2,threads=2", &ids);
  constexpr uint64_t kBase = 0xe0000;
  std::vector<uint8_t> buf(64 * 1024);
  GuestMemory mem(buf, kBase);
  auto rsdp = write_acpi_tables(mem, kBase, pc);
  ASSERT_TRUE(rsdp.ok()) << rsdp.error().message;
  const uint8_t* r = buf.data();
  EXPECT_EQ(0, std::memcmp(r, "RSD PTR ", 8));
  EXPECT_EQ(byte_sum({r, 20}), 0) << "ACPI 1.0 checksum";
  EXPECT_EQ(byte_sum({r, 36}), 0) << "extended checksum";
  EXPECT_EQ(r[15], 2) << "revision 2: XSDT";
  uint64_t xsdt_addr;
  std::memcpy(&xsdt_addr, r + 24, 8);
  Sdt xsdt = sdt_at(buf, kBase, xsdt_addr);
  EXPECT_EQ(xsdt.sig, "XSDT");
  EXPECT_EQ(byte_sum({xsdt.p, xsdt.length}), 0);
  std::map<std::string, Sdt> tables;
  for (uint32_t off = 36; off < xsdt.length; off += 8) {
    uint64_t a;
    std::memcpy(&a, xsdt.p + off, 8);
    Sdt t = sdt_at(buf, kBase, a);
    EXPECT_EQ(byte_sum({t.p, t.length}), 0) << t.sig;
    tables[t.sig] = t;
  }
  ASSERT_TRUE(tables.count("FACP") && tables.count("APIC"));
  const Sdt& fadt = tables["FACP"];
  uint32_t pm1a_evt, pm1a_cnt, dsdt_addr, facs_addr;
  std::memcpy(&facs_addr, fadt.p + 36, 4);
  std::memcpy(&dsdt_addr, fadt.p + 40, 4);
  std::memcpy(&pm1a_evt, fadt.p + 56, 4);
  std::memcpy(&pm1a_cnt, fadt.p + 64, 4);
  EXPECT_EQ(pm1a_evt, PlatformLayout::kPm1aEvent);
  EXPECT_EQ(pm1a_cnt, PlatformLayout::kPm1aControl);
  EXPECT_EQ(fadt.p[89], 2) << "PM1_CNT_LEN";
  EXPECT_EQ(facs_addr % 64, 0u);
  EXPECT_EQ(sdt_at(buf, kBase, facs_addr).sig, "FACS");
  Sdt dsdt = sdt_at(buf, kBase, dsdt_addr);
  EXPECT_EQ(dsdt.sig, "DSDT");
  EXPECT_EQ(byte_sum({dsdt.p, dsdt.length}), 0);
  std::string aml(reinterpret_cast<const char*>(dsdt.p + 36), dsdt.length - 36);
  EXPECT_NE(aml.find("_S5_"), std::string::npos);
  // MADT: one enabled local APIC per vCPU with the builder's APIC IDs, the IOAPIC, the SCI override.
  const Sdt& madt = tables["APIC"];
  std::vector<uint32_t> seen;
  bool ioapic = false, sci = false;
  for (uint32_t off = 44; off < madt.length; off += madt.p[off + 1]) {
    const uint8_t* e = madt.p + off;
    ASSERT_GT(e[1], 0);
    if (e[0] == 0) {
      seen.push_back(e[3]);
      EXPECT_EQ(e[4] & 1, 1);
    }
    if (e[0] == 1) ioapic = true;
    if (e[0] == 2 && e[3] == PlatformLayout::kSciIrq) sci = true;
  }
  EXPECT_EQ(seen, ids);
  EXPECT_TRUE(ioapic);
  EXPECT_TRUE(sci);
}

}  // namespace
}  // namespace cpumodel::vmm
