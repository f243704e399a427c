/* The guest side of the QEMU differential test: a static /init that prints every online vCPU's
 * CPUID in the text format of Debian's `cpuid -r` ("CPU n:" then "   0xLEAF 0xSS: eax=..." lines)
 * on the serial console, then powers the guest off. It runs each vCPU's queries pinned to that
 * vCPU (sched_setaffinity), so APIC-ID-dependent leaves are that vCPU's.
 * Queried: basic leaves up to 0.EAX, 0x40000000-1, extended leaves up to 0x80000000.EAX, with the
 * subleaves a KVM table describes (leaf 4 until its null type, 7.0-2, 0xB.0-2, 0xD.0-63, 0x12.0-2,
 * 0x14/0x1D/0x1E.0-1, 0x1F.0-3, 0x8000001D until its null type). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <unistd.h>

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
  __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

static void print(uint32_t leaf, uint32_t sub) {
  uint32_t r[4];
  cpuid(leaf, sub, r);
  printf("   0x%08x 0x%02x: eax=0x%08x ebx=0x%08x ecx=0x%08x edx=0x%08x\n", leaf, sub, r[0], r[1], r[2], r[3]);
}

static unsigned subleaves(uint32_t leaf) {
  switch (leaf) {
    case 0x7: case 0xb: case 0x12: return 3;
    case 0xd: return 64;
    case 0x14: case 0x1d: case 0x1e: return 2;
    case 0x1f: return 4;
    default: return 1;
  }
}

static void dump_range(uint32_t first) {
  uint32_t r[4];
  cpuid(first, 0, r);
  uint32_t last = r[0];
  if (last < first || last - first > 0x40) last = first;
  for (uint32_t leaf = first; leaf <= last; ++leaf) {
    if (leaf == 4 || leaf == 0x8000001d) {
      for (uint32_t s = 0; s < 16; ++s) {
        print(leaf, s);
        cpuid(leaf, s, r);
        if ((r[0] & 0x1f) == 0) break;
      }
      continue;
    }
    for (uint32_t s = 0; s < subleaves(leaf); ++s) print(leaf, s);
  }
}

int main(void) {
  mount("devtmpfs", "/dev", "devtmpfs", 0, 0);
  int fd = open("/dev/console", O_RDWR);
  if (fd >= 0) {
    dup2(fd, 1);
    dup2(fd, 2);
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  printf("PROBE-BEGIN %ld\n", n);
  for (long cpu = 0; cpu < n; ++cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
      printf("PROBE-ERROR affinity %ld\n", cpu);
      continue;
    }
    printf("CPU %ld:\n", cpu);
    dump_range(0);
    print(0x40000000, 0);
    print(0x40000001, 0);
    dump_range(0x80000000);
  }
  printf("PROBE-END\n");
  fflush(stdout);
  sync();
  reboot(RB_POWER_OFF);
  return 0;
}
