// Snapshots of Linux VMs (LinuxVm: UART, i8042, CMOS, ACPI PM, irqchip, PIT, split RAM) on the real
// /dev/kvm with Debian's kernel: save, restore in a new VM, save again, and every part agrees.
// On kvm_pvm the kernel does not get far (ENVIRONMENT.md), so this proves the save/restore path,
// not a resumed Linux; that is tests/e2e/snapshot_rig_test.cc (the nested SVM rig).
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include "cpumodel/cpuid/guest_cpuid.h"
#include "cpumodel/cpuid/smp.h"
#include "cpumodel/vmm/kvm.h"
#include "cpumodel/vmm/linux_vm.h"
#include "cpumodel/vmm/snapshot.h"

#include "debian_kernel.h"

namespace cpumodel::vmm {
namespace {

using cpumodel::testing::debian_kernel;

std::vector<uint8_t> read_all(const std::string& path) {
  std::vector<uint8_t> out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  struct stat st{};
  ::fstat(fd, &st);
  out.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  return out;
}

class LinuxSnapshot : public ::testing::Test {
 protected:
  void SetUp() override {
    kernel_path_ = debian_kernel();
    if (kernel_path_.empty()) GTEST_SKIP() << "no readable /boot/vmlinuz-* (apt-get install linux-image-amd64)";
    if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is missing or not accessible";
    kernel_ = read_all(kernel_path_);
    dir_ = std::filesystem::temp_directory_path() / ("cpumodel-linuxsnap-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // A 2-vCPU qemu64-like guest from KVM's own table (the CPUID builder is tested elsewhere).
  LinuxVmConfig config(uint64_t ram, int serial_in) {
    auto kvm = Kvm::open();
    EXPECT_TRUE(kvm.ok());
    auto table = kvm->supported_cpuid();
    EXPECT_TRUE(table.ok());
    SmpConfig smp;
    smp.cpus = smp.maxcpus = smp.cores = 2;
    LinuxVmConfig c;
    c.kernel = kernel_;
    c.kernel_name = kernel_path_;
    c.cmdline = "console=ttyS0";
    c.ram_size = ram;
    c.places = vcpu_places(smp);
    for (const auto& p : c.places) {
      CpuidTable t = *table;
      CpuidRegs l1 = t.get(1);
      l1.ebx = (l1.ebx & 0x00ffffff) | p.apic_id << 24;
      t.set(1, 0, l1);
      c.tables.push_back(t);
    }
    c.serial_out_fd = -1;
    c.serial_in_fd = serial_in;
    return c;
  }

  SnapshotInfo info() {
    SnapshotInfo i;
    i.tool_version = "test";
    i.cpu_spec = i.cpu_model = "host-kvm";
    i.smp = "2,maxcpus=2,sockets=1,dies=1,cores=2,threads=1";
    i.cpus = i.maxcpus = i.cores = 2;
    i.sockets = i.dies = i.threads = 1;
    i.guest = "linux";
    return i;
  }

  std::string kernel_path_;
  std::vector<uint8_t> kernel_;
  std::string dir_;
};

// Runs `vm` for a moment, with typed input queued, then snapshots it (quit) at `path`.
void run_and_save(LinuxVm& vm, const std::string& path, const SnapshotInfo& info, SnapshotStats* stats) {
  std::thread runner([&vm] { (void)vm.run(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto s = snapshot_linux_vm(vm, path, info, AfterSnapshot::kStop);
  runner.join();
  ASSERT_TRUE(s.ok()) << s.error().message;
  *stats = *s;
}

TEST_F(LinuxSnapshot, SaveRestoreSaveAgreesOnEveryPartOnThisKvm) {
  int typed[2];
  ASSERT_EQ(::pipe(typed), 0);
  ASSERT_EQ(::write(typed[1], "echo hi\n", 8), 8);
  auto vm = LinuxVm::create(config(128ull << 20, typed[0]));
  ASSERT_TRUE(vm.ok()) << vm.error().message;
  std::string path = dir_ + "/a.snap";
  SnapshotStats stats;
  run_and_save(**vm, path, info(), &stats);
  ::close(typed[1]);
  EXPECT_EQ(stats.memory_bytes, 128ull << 20);
  auto snap = read_snapshot(path);
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  ASSERT_TRUE(snap->state.devices.has_value());
  // The UART had receive interrupts off (no driver yet): what was typed waits in its queue.
  EXPECT_EQ(std::string(snap->state.devices->serial.rx.begin(), snap->state.devices->serial.rx.end()), "echo hi\n");
  EXPECT_TRUE(snap->state.vm.irqchip);
  EXPECT_TRUE(snap->state.vm.pit.has_value());
  EXPECT_TRUE(snap->header.more_memory.empty()) << "128 MiB is all below the hole";
  EXPECT_EQ(snap->header.guest, "linux");

  LinuxVmConfig rc;
  rc.serial_out_fd = -1;
  auto restored = restore_linux_vm(*snap, path, rc, true);
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  auto again = (*restored)->save_state();  // before it runs: exactly what was restored
  ASSERT_TRUE(again.ok()) << again.error().message;
  ASSERT_EQ(again->vcpus.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const VcpuState &a = snap->state.vcpus[i], &b = again->vcpus[i];
    SCOPED_TRACE("vCPU " + std::to_string(i));
    EXPECT_EQ(a.apic_id, b.apic_id);
    EXPECT_EQ(a.mp_state, b.mp_state);
    EXPECT_EQ(std::memcmp(&a.regs, &b.regs, sizeof a.regs), 0) << "RIP " << a.regs.rip << " vs " << b.regs.rip;
    EXPECT_EQ(a.sregs.cr0, b.sregs.cr0);
    EXPECT_EQ(a.sregs.cr3, b.sregs.cr3);
    EXPECT_EQ(a.sregs.cr4, b.sregs.cr4);
    EXPECT_EQ(a.sregs.efer, b.sregs.efer);
    EXPECT_EQ(a.sregs.apic_base, b.sregs.apic_base);
    EXPECT_EQ(a.cpuid, b.cpuid);
    EXPECT_EQ(a.xsave, b.xsave);
    EXPECT_EQ(a.msrs.size(), b.msrs.size());
  }
  EXPECT_EQ(*again->devices, *snap->state.devices);
  EXPECT_EQ(std::memcmp(&again->vm.ioapic, &snap->state.vm.ioapic, sizeof again->vm.ioapic), 0);
  EXPECT_EQ(std::memcmp(&again->vm.pic_master, &snap->state.vm.pic_master, sizeof again->vm.pic_master), 0);
  // Guest RAM is the memory file, mapped: the kernel's boot parameters are where they were.
  auto mem = (*restored)->memory();
  ASSERT_EQ(mem.size(), 1u);
  auto file = read_all(memory_path_of(path, snap->header.memory));
  ASSERT_EQ(file.size(), mem[0]->size());
  EXPECT_EQ(std::memcmp(file.data(), mem[0]->host(), 1 << 20), 0) << "the first MiB";
  // And it runs on, then saves again with the same devices and topology.
  std::string path2 = dir_ + "/b.snap";
  SnapshotStats stats2;
  run_and_save(**restored, path2, info(), &stats2);
  auto snap2 = read_snapshot(path2);
  ASSERT_TRUE(snap2.ok()) << snap2.error().message;
  EXPECT_EQ(snap2->state.vcpus.size(), 2u);
  EXPECT_EQ(snap2->state.devices->serial.rx, snap->state.devices->serial.rx);
}

TEST_F(LinuxSnapshot, RamAboveFourGiBIsItsOwnRegionAndFile) {
  // 3 GiB + 64 MiB: 3 GiB below the MMIO hole, 64 MiB at 4 GiB (sparse files: untouched RAM is zero).
  auto vm = LinuxVm::create(config((3ull << 30) + (64ull << 20), -1));
  ASSERT_TRUE(vm.ok()) << vm.error().message;
  ASSERT_EQ((*vm)->memory().size(), 2u);
  ASSERT_TRUE((*vm)->memory()[1]->write_obj<uint64_t>(LinuxLayout::kHighRamStart + 4096, 0x1234567890abcdefull).ok());
  std::string path = dir_ + "/big.snap";
  SnapshotStats stats;
  run_and_save(**vm, path, info(), &stats);
  EXPECT_EQ(stats.memory_bytes, (3ull << 30) + (64ull << 20));
  auto snap = read_snapshot(path);
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  ASSERT_EQ(snap->header.more_memory.size(), 1u);
  EXPECT_EQ(snap->header.memory.size, 3ull << 30);
  EXPECT_EQ(snap->header.more_memory[0].guest_base, LinuxLayout::kHighRamStart);
  EXPECT_EQ(snap->header.more_memory[0].size, 64ull << 20);
  EXPECT_EQ(snap->header.more_memory[0].file, "big.snap.mem.1");
  LinuxVmConfig rc;
  rc.serial_out_fd = -1;
  auto restored = restore_linux_vm(*snap, path, rc, true);
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  auto mem = (*restored)->memory();
  ASSERT_EQ(mem.size(), 2u);
  auto v = mem[1]->read_obj<uint64_t>(LinuxLayout::kHighRamStart + 4096);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 0x1234567890abcdefull);
  // A missing high file is named.
  std::filesystem::remove(dir_ + "/big.snap.mem.1");
  auto gone = restore_linux_vm(*snap, path, rc, false);
  ASSERT_FALSE(gone.ok());
  EXPECT_NE(gone.error().message.find("big.snap.mem.1"), std::string::npos) << gone.error().message;
}

TEST_F(LinuxSnapshot, AFailedSaveLeavesTheSnapshotAtThePathIntact) {
  std::string path = dir_ + "/keep.snap";
  {
    auto vm = LinuxVm::create(config(128ull << 20, -1));
    ASSERT_TRUE(vm.ok()) << vm.error().message;
    SnapshotStats stats;
    run_and_save(**vm, path, info(), &stats);
  }
  auto before = read_snapshot(path);
  ASSERT_TRUE(before.ok());
  // The state file cannot be written this time (its temporary name is taken by a directory): the
  // memory file is written first, then the save fails, and nothing at `path` may change.
  std::filesystem::create_directory(path + ".state." + std::to_string(::getpid()));
  auto vm = LinuxVm::create(config(128ull << 20, -1));
  ASSERT_TRUE(vm.ok()) << vm.error().message;
  std::thread runner([&] { (void)(*vm)->run(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto failed = snapshot_linux_vm(**vm, path, info(), AfterSnapshot::kStop);
  EXPECT_FALSE(failed.ok());
  EXPECT_FALSE((*vm)->paused()) << "a failed save with quit resumes the guest";
  (*vm)->request_quit("test");
  runner.join();
  auto after = read_snapshot(path);
  ASSERT_TRUE(after.ok()) << after.error().message;
  EXPECT_EQ(after->header.memory, before->header.memory);
  EXPECT_TRUE(verify_memory_file(path, after->header.memory, true).ok()) << "the old memory file, not a new one";
  for (const auto& e : std::filesystem::directory_iterator(dir_))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << "left behind: " << e.path();
}

TEST_F(LinuxSnapshot, AProbeGuestSnapshotIsNotRestoredAsLinux) {
  auto vm = LinuxVm::create(config(128ull << 20, -1));
  ASSERT_TRUE(vm.ok()) << vm.error().message;
  std::string path = dir_ + "/c.snap";
  SnapshotStats stats;
  run_and_save(**vm, path, info(), &stats);
  auto snap = read_snapshot(path);
  ASSERT_TRUE(snap.ok());
  snap->state.devices.reset();
  LinuxVmConfig rc;
  auto r = restore_linux_vm(*snap, path, rc, false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not a Linux guest's snapshot"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace cpumodel::vmm
