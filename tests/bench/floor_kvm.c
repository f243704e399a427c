/* The floor for `cpumodel verify`: the fewest KVM ioctls that run CPUID once in a guest on N vCPUs
   (create VM, memory, vCPUs, KVM_SET_CPUID2 from KVM_GET_SUPPORTED_CPUID, long-mode sregs, run
   to one `out`). No checks beyond what it needs to work, no threads for 1 vCPU. Plain C on purpose:
   the number bench_verify puts next to ours. Usage: floor_kvm [VCPUS] [DEVICE]. */
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM_SIZE (2u << 20)
#define CODE 0x8000u
#define PML4 0x2000u
#define MAX_VCPUS 64

/* The guest: CPUID leaf 0, RSI times (1 unless asked), then an `out` that ends the run. */
__asm__(".pushsection .rodata.floor_guest, \"a\"\n"
        ".globl floor_guest_begin, floor_guest_end\n"
        "floor_guest_begin:\n"
        "1:\n"
        "  xorl %eax, %eax\n"
        "  xorl %ecx, %ecx\n"
        "  cpuid\n"
        "  decl %esi\n"
        "  jnz 1b\n"
        "  outb %al, $0xe0\n"
        "  hlt\n"
        "floor_guest_end:\n"
        ".popsection\n");
extern const uint8_t floor_guest_begin[], floor_guest_end[];

static int kvm_fd, vm_fd, run_size, cpuids = 1;
static struct kvm_cpuid2* cpuid;

static void die(const char* what) {
  perror(what);
  exit(3);
}

static void setup_vcpu(int vcpu) {
  struct kvm_sregs s;
  struct kvm_regs r;
  struct kvm_segment cs = {.base = 0, .limit = 0xffffffff, .selector = 8, .type = 11, .present = 1,
                           .s = 1, .l = 1, .g = 1};
  struct kvm_segment ds = {.base = 0, .limit = 0xffffffff, .selector = 16, .type = 3, .present = 1,
                           .s = 1, .db = 1, .g = 1};
  if (ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0) die("KVM_SET_CPUID2");
  if (ioctl(vcpu, KVM_GET_SREGS, &s) < 0) die("KVM_GET_SREGS");
  s.cs = cs;
  s.ds = s.es = s.fs = s.gs = s.ss = ds;
  s.cr0 = 0x80050033;
  s.cr3 = PML4;
  s.cr4 = 0x20;
  s.efer = 0x500;
  if (ioctl(vcpu, KVM_SET_SREGS, &s) < 0) die("KVM_SET_SREGS");
  memset(&r, 0, sizeof r);
  r.rflags = 2;
  r.rip = CODE;
  r.rsi = (uint64_t)cpuids;
  if (ioctl(vcpu, KVM_SET_REGS, &r) < 0) die("KVM_SET_REGS");
}

static void* run_vcpu(void* arg) {
  int vcpu = (int)(intptr_t)arg;
  struct kvm_run* run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) die("mmap kvm_run");
  if (ioctl(vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
  if (run->exit_reason != KVM_EXIT_IO) {
    fprintf(stderr, "floor_kvm: exit reason %u\n", run->exit_reason);
    exit(3);
  }
  munmap(run, (size_t)run_size);
  return NULL;
}

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1;
  const char* dev = argc > 2 ? argv[2] : "/dev/kvm";
  if (argc > 3) cpuids = atoi(argv[3]);
  int vcpus[MAX_VCPUS];
  pthread_t threads[MAX_VCPUS];
  uint8_t* mem;
  uint64_t* pt;
  if (n < 1 || n > MAX_VCPUS || cpuids < 1) return 2;
  if ((kvm_fd = open(dev, O_RDWR | O_CLOEXEC)) < 0) die(dev);
  if ((vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0)) < 0) die("KVM_CREATE_VM");
  mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) die("mmap");
  struct kvm_userspace_memory_region region = {.slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE,
                                               .userspace_addr = (uint64_t)(uintptr_t)mem};
  if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION");
  pt = (uint64_t*)(mem + PML4);
  pt[0] = 0x3000 | 3;
  pt = (uint64_t*)(mem + 0x3000);
  pt[0] = 0x4000 | 3;
  pt = (uint64_t*)(mem + 0x4000);
  pt[0] = 0x83;
  memcpy(mem + CODE, floor_guest_begin, (size_t)(floor_guest_end - floor_guest_begin));
  cpuid = calloc(1, sizeof *cpuid + 256 * sizeof(struct kvm_cpuid_entry2));
  cpuid->nent = 256;
  if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) die("KVM_GET_SUPPORTED_CPUID");
  if ((run_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0)) < 0) die("KVM_GET_VCPU_MMAP_SIZE");
  for (int i = 0; i < n; ++i) {
    if ((vcpus[i] = ioctl(vm_fd, KVM_CREATE_VCPU, i)) < 0) die("KVM_CREATE_VCPU");
    setup_vcpu(vcpus[i]);
  }
  if (n == 1) {
    run_vcpu((void*)(intptr_t)vcpus[0]);
  } else {
    for (int i = 0; i < n; ++i) pthread_create(&threads[i], NULL, run_vcpu, (void*)(intptr_t)vcpus[i]);
    for (int i = 0; i < n; ++i) pthread_join(threads[i], NULL);
  }
  return 0;
}
