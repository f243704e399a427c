/* The guest of `verify --hold`: after the probe, every vCPU keeps computing a deterministic
   sequence (Knuth's MMIX LCG mixed with a 128 KiB table it reads back), so a snapshot taken at any
   moment and resumed elsewhere must give the same sequence. vCPU 0 prints its running checksum
   on COM1 every 1024 iterations ("0123abcd\n"); the others compute silently. 64-bit long mode,
   general registers only (kvm_pvm emulates guest instructions and fails on SSE/AVX).

   Entry: RDI = iterations (0: forever), RSI = this vCPU's table (128 KiB, zeroed), RDX = seed,
   RBP = 1 on the vCPU that prints. At the end it writes the checksum to CPUMODEL_DONE_PORT. */
#include "cpumodel/vmm/guest_abi.h"

#define COM1 0x3f8

  .section .rodata.cpumodel_hold_guest, "a"
  .code64
  .globl cpumodel_hold_guest_begin, cpumodel_hold_guest_end

cpumodel_hold_guest_begin:
  mov %rdx, %r8                  /* x */
  mov %rdi, %r11                 /* iterations */
  mov %rsi, %r10                 /* table */
  xor %r9d, %r9d                 /* counter */
  movabs $6364136223846793005, %r12
  movabs $1442695040888963407, %r13
1:
  imul %r12, %r8
  add %r13, %r8
  mov %r9, %rax
  and $0x3fff, %eax
  mov (%r10,%rax,8), %rbx
  xor %r8, (%r10,%rax,8)
  rol $13, %rbx
  xor %rbx, %r8
  inc %r9
  test $0x3ff, %r9
  jnz 4f
  test %rbp, %rbp
  jz 4f
  mov %r8, %rbx                  /* print the low 32 bits of x as 8 hex digits and a newline */
  shr $32, %rbx
  xor %r8d, %ebx
  mov $8, %ecx
  mov $COM1, %dx
2:
  rol $4, %ebx
  mov %ebx, %eax
  and $0xf, %eax
  cmp $10, %eax
  jb 3f
  add $('a' - '0' - 10), %eax
3:
  add $'0', %eax
  outb %al, %dx
  dec %ecx
  jnz 2b
  mov $'\n', %al
  outb %al, %dx
4:
  test %r11, %r11
  jz 1b
  cmp %r11, %r9
  jb 1b
  mov %r8, %rax
  mov $CPUMODEL_DONE_PORT, %dx
  outl %eax, %dx
5:
  hlt
  jmp 5b
cpumodel_hold_guest_end:

  .section .note.GNU-stack, "", @progbits
