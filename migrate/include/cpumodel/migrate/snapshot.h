// A saved guest (`cpumodel` snapshots): the state KVM's get ioctls give for the VM and each vCPU,
// a header saying who wrote it, for which CPU and on which host, and the codec of the file.
//
// The snapshot file (SNAPSHOT):
//   offset 0   8 bytes   magic "CPMSNAP\n"
//          8   u16 LE    format major version   (a reader refuses a newer major)
//         10   u16 LE    format minor version   (additive changes: older readers ignore new fields)
//         12   u32 LE    reserved, 0
//         16   u64 LE    payload length N
//         24   N bytes   payload: Protobuf message cpumodel.snap.Snapshot (migrate/proto/state.proto)
//     24 + N   32 bytes  SHA-256 (FIPS 180-4) of bytes [0, 24 + N)
// Guest memory is a separate raw file (SNAPSHOT.mem by default) referenced from the header by
// name, size and XXH64 checksum (a 64-bit non-cryptographic hash, Yann Collet's published
// algorithm, implemented here; fast enough for gigabytes): it can be mapped lazily on restore.
//
// Both files are written atomically (temporary file + rename), memory first: a crash leaves the
// old pair or a new memory file whose checksum the old state file does not match.
#pragma once

#include <linux/kvm.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cpumodel/cpuid/result.h"
#include "cpumodel/cpuid/table.h"

namespace cpumodel {

inline constexpr char kSnapshotMagic[8] = {'C', 'P', 'M', 'S', 'N', 'A', 'P', '\n'};
inline constexpr uint16_t kSnapshotMajor = 1;
inline constexpr uint16_t kSnapshotMinor = 1;  // 1: port devices and more memory regions (Linux guests)
inline constexpr size_t kSnapshotPreamble = 24;  // magic, versions, reserved, payload length
inline constexpr size_t kSnapshotChecksumSize = 32;
inline constexpr size_t kLapicSize = 1024;       // struct kvm_lapic_state
inline constexpr size_t kXsaveLegacySize = 4096; // struct kvm_xsave without KVM_CAP_XSAVE2's extra

struct MsrValue {
  uint32_t index = 0;
  uint64_t value = 0;
  bool operator==(const MsrValue&) const = default;
};

// One vCPU as KVM gives it. An optional part is absent when the VM does not have it (the LAPIC
// without the in-kernel irqchip) or the backend refused the ioctl (named in `unsupported`).
struct VcpuState {
  uint32_t index = 0;
  uint32_t apic_id = 0;
  uint32_t mp_state = 0;                      // KVM_MP_STATE_*
  kvm_regs regs{};
  kvm_sregs sregs{};
  std::vector<uint8_t> xsave;                 // struct kvm_xsave bytes; empty: none
  bool xsave2 = false;                        // read with KVM_GET_XSAVE2
  std::optional<std::vector<std::pair<uint32_t, uint64_t>>> xcrs;  // XCR index, value
  std::vector<MsrValue> msrs;                 // in restore order
  std::vector<uint8_t> lapic;                 // kLapicSize bytes; empty: no in-kernel LAPIC
  std::optional<kvm_vcpu_events> events;
  std::optional<kvm_debugregs> debugregs;
  CpuidTable cpuid;                           // KVM_GET_CPUID2: the table in force
  uint32_t tsc_khz = 0;                       // 0: unknown
  std::vector<std::string> unsupported;       // "KVM_GET_LAPIC: Invalid argument (errno 22)"

  uint64_t xcr0() const;                      // XCR0, or 1 (x87 only) when XCRs were not saved
  std::optional<uint64_t> msr(uint32_t index) const;
};

struct VmState {
  bool irqchip = false;                       // PIC + IOAPIC below are meaningful
  kvm_pic_state pic_master{}, pic_slave{};
  kvm_ioapic_state ioapic{};
  std::optional<kvm_pit_state2> pit;
  std::optional<kvm_clock_data> clock;        // kvmclock (KVM_GET_CLOCK)
  std::vector<std::string> unsupported;
};

// The port devices a Linux guest has (vmm/devices.h), emulated in user space: what a guest
// driver programmed and what is queued. The in-kernel PIC, IOAPIC and PIT are in VmState.
struct SerialState {                          // 8250/16550A UART
  uint8_t ier = 0, lcr = 0, mcr = 0x08, scr = 0, dll = 0x0c, dlm = 0, fcr = 0;
  bool thr_interrupt = false;                 // THRE interrupt pending
  bool irq_level = false;                     // the line as last driven
  std::vector<uint8_t> rx;                    // input not yet read by the guest
  bool operator==(const SerialState&) const = default;
};
struct I8042State {
  std::vector<uint8_t> out;                   // bytes queued for the data port
  uint8_t pending_command = 0, command_byte = 0x45;
  bool operator==(const I8042State&) const = default;
};
struct CmosState {
  uint8_t index = 0;                          // selected register (bit 7: NMI mask)
  std::array<uint8_t, 128> ram{};             // non-clock registers as written (the clock reads the host's time)
  bool operator==(const CmosState&) const = default;
};
struct AcpiPmState {
  uint16_t status = 0, enable = 0, control = 1;
  bool sci_level = false;
  bool operator==(const AcpiPmState&) const = default;
};
struct DeviceState {
  SerialState serial;
  I8042State i8042;
  CmosState cmos;
  AcpiPmState pm;
  bool operator==(const DeviceState&) const = default;
};

struct MachineState {
  VmState vm;
  std::vector<VcpuState> vcpus;
  std::optional<DeviceState> devices;         // a Linux guest's; the probe guests have none
};

// The host that saved the guest.
struct HostFingerprint {
  std::string vendor;
  uint32_t signature = 0;                     // CPUID.01H:EAX
  std::string brand, microcode, kernel, kvm_backend, hostname;
  uint32_t tsc_khz = 0;
  bool tsc_scaling = false;
  std::vector<uint32_t> msr_index_list;
  bool operator==(const HostFingerprint&) const = default;
};

struct MemoryRef {
  std::string file;                           // relative to the snapshot's directory
  uint64_t size = 0;
  uint64_t guest_base = 0;
  std::string checksum_algorithm = "xxh64";
  uint64_t checksum = 0;
  bool operator==(const MemoryRef&) const = default;
};

struct SnapshotHeader {
  uint16_t major = kSnapshotMajor, minor = kSnapshotMinor;  // as read (written: ours)
  std::string tool_version;
  std::string cpu_spec, cpu_model;
  std::string smp;                            // normalised -smp string
  unsigned cpus = 0, maxcpus = 0, sockets = 0, dies = 0, cores = 0, threads = 0;
  HostFingerprint source;
  uint64_t created_unix_s = 0;
  MemoryRef memory;
  // More guest RAM, each region its own file: a Linux guest's RAM above 4 GiB (the first region
  // ends at the MMIO hole below it).
  std::vector<MemoryRef> more_memory;
  uint32_t cpu_mode = 0;                      // 0 long mode, 1 protected mode (vmm::CpuMode)
  std::string guest;                          // what ran
  std::vector<std::string> unsupported;
};

struct Snapshot {
  SnapshotHeader header;
  MachineState state;
};

// The file's bytes, and back. decode_snapshot refuses, with a sentence saying which: a wrong magic,
// a newer major version, a truncated file, trailing bytes, a checksum mismatch, a payload that does
// not parse, and state that cannot be right (sizes of the XSAVE area and LAPIC page, MSR lists).
std::string encode_snapshot(const Snapshot& snapshot);
Result<Snapshot> decode_snapshot(std::string_view bytes, const std::string& name);
Status write_snapshot(const std::string& path, const Snapshot& snapshot);
Result<Snapshot> read_snapshot(const std::string& path);

// Guest memory. write_memory_file writes `bytes` atomically and returns its reference (file name
// relative to the directory of `snapshot_path`). `durable`: fdatasync before the rename.
std::string default_memory_path(const std::string& snapshot_path);  // SNAPSHOT.mem
// With `pending`: the file is left under the temporary name stored there, for the caller to
// rename once every file of the snapshot is written (or to unlink).
Result<MemoryRef> write_memory_file(const std::string& memory_path, std::span<const uint8_t> bytes,
                                    uint64_t guest_base, bool durable, std::string* pending = nullptr);
// Every memory region of a snapshot: `memory`, then `more_memory`.
std::vector<const MemoryRef*> memory_regions(const SnapshotHeader& header);
// Where the memory file of a snapshot read from `snapshot_path` is.
std::string memory_path_of(const std::string& snapshot_path, const MemoryRef& ref);
// Size check (cheap) and, with `checksum`, the XXH64 of the whole file.
Status verify_memory_file(const std::string& snapshot_path, const MemoryRef& ref, bool checksum);

// Checksums.
std::array<uint8_t, 32> sha256(std::span<const uint8_t> bytes);
uint64_t xxh64(std::span<const uint8_t> bytes, uint64_t seed = 0);
std::string hex_bytes(std::span<const uint8_t> bytes);

// The MSRs a snapshot saves: one row per MSR (or range) that is meaningful to save and restore,
// with the guest CPUID feature(s) it needs (space-separated canonical names, any one is enough;
// "" = KVM emulates it for every guest). `listed`: KVM reports it in KVM_GET_MSR_INDEX_LIST;
// the others (MTRRs) KVM handles without listing them, and a snapshot saves them because the
// guest's CPUID implies them.
struct StateMsr {
  uint32_t index;
  uint32_t count;     // a range [index, index + count)
  const char* name;
  const char* needs;
  bool listed;
};
std::span<const StateMsr> state_msr_table();
const StateMsr* find_state_msr(uint32_t index);
// "MSR 6E0H (IA32_TSC_DEADLINE)".
std::string describe_msr(uint32_t index);
// What to save for a guest with `guest_cpuid`: the rows of the table whose feature the guest has,
// listed ones only when `kvm_index_list` has them; IA32_TSC_DEADLINE last (it must follow TSC).
std::vector<uint32_t> msrs_to_save(std::span<const uint32_t> kvm_index_list, const CpuidTable& guest_cpuid);
// True when `guest_cpuid` has one of the features `needs` names ("" is always true).
bool cpuid_has_any(const CpuidTable& guest_cpuid, const char* needs);

// XSAVE state components by bit of XCR0/XSS: "x87", "sse", "avx", ... ("component N" beyond).
std::string xsave_component(unsigned bit);
std::vector<std::string> xsave_components(uint64_t mask);

// `cpumodel state inspect`: what is inside, for people and (JSON) for programs.
std::string vcpu_mode(const VcpuState& v);  // "64-bit long mode", "32-bit protected mode", ...
std::string snapshot_text(const Snapshot& s);
std::string snapshot_json(const Snapshot& s);

}  // namespace cpumodel
