/* The determinism guest of the snapshot tests: a long, deterministic computation whose result
   depends on every kind of state a snapshot must carry -- general registers, memory (a 128 KiB
   table it reads back), SSE registers (XSAVE area), the upper halves of a YMM register when the
   CPU has AVX (XCR0 and the AVX component), control registers (it sets CR4 itself).

   Entry (64-bit long mode): RDI = iterations, RSI = its table (128 KiB, zeroed), RDX = seed,
   RBP bit 0: use SSE (sets CR4.OSFXSR); bit 1: also AVX when CPUID has it (XCR0 = x87|SSE|AVX).
   Every 64 iterations it writes a 32-bit checkpoint to port SNAPSHOT_GUEST_PORT; at the end it
   writes the final checkpoint to CPUMODEL_DONE_PORT. */
#include "cpumodel/vmm/guest_abi.h"

#define SNAPSHOT_GUEST_PORT 0x0cf0

  .section .rodata.cpumodel_snapshot_guest, "a"
  .code64
  .globl snapshot_guest_begin, snapshot_guest_end

snapshot_guest_begin:
  mov %rdx, %r14                 /* seed (CPUID clobbers RDX) */
  mov %rdi, %r11                 /* iterations */
  mov %rsi, %r10                 /* table */
  xor %r15d, %r15d               /* bit 0: SSE on, bit 1: AVX on */
  test $1, %ebp
  jz 1f
  mov %cr4, %rax                 /* OSFXSR | OSXMMEXCPT: SSE instructions */
  or $0x600, %rax
  mov %rax, %cr4
  mov $1, %r15d
  test $2, %ebp
  jz 1f
  mov $1, %eax
  cpuid
  bt $26, %ecx                   /* XSAVE */
  jnc 1f
  bt $28, %ecx                   /* AVX */
  jnc 1f
  mov %cr4, %rax                 /* OSXSAVE, then XCR0 = x87 | SSE | AVX */
  bts $18, %rax
  mov %rax, %cr4
  xor %ecx, %ecx
  xor %edx, %edx
  mov $7, %eax
  xsetbv
  mov $3, %r15d
  vxorps %ymm3, %ymm3, %ymm3
1:
  mov %r14, %r8                  /* x: the LCG state */
  xor %r9d, %r9d                 /* counter */
  movabs $6364136223846793005, %r12
  movabs $1442695040888963407, %r13
  test $1, %r15d
  jz 2f
  pxor %xmm0, %xmm0
2:
  imul %r12, %r8                 /* x = x * A + C (Knuth's MMIX LCG) */
  add %r13, %r8
  mov %r9, %rax                  /* table[i & 16383] ^= x, and x mixes in the old entry */
  and $0x3fff, %eax
  mov (%r10,%rax,8), %rbx
  xor %r8, (%r10,%rax,8)
  rol $13, %rbx
  xor %rbx, %r8
  test $1, %r15d                 /* SSE accumulator */
  jz 3f
  movq %r8, %xmm1
  paddq %xmm1, %xmm0
  test $2, %r15d
  jz 3f
  vinsertf128 $1, %xmm0, %ymm3, %ymm3   /* keep it in YMM3's upper half too */
3:
  inc %r9
  test $0x3f, %r9
  jnz 5f
  mov %r8, %rax                  /* checkpoint = x ^ xmm0 ^ ymm3.upper */
  test $1, %r15d
  jz 4f
  movq %xmm0, %rbx
  xor %rbx, %rax
  test $2, %r15d
  jz 4f
  vextractf128 $1, %ymm3, %xmm4
  movq %xmm4, %rbx
  rol $7, %rbx
  xor %rbx, %rax
4:
  mov %rax, %rbx
  shr $32, %rbx
  xor %ebx, %eax
  mov $SNAPSHOT_GUEST_PORT, %dx
  outl %eax, %dx
5:
  cmp %r11, %r9
  jb 2b
  mov %r8, %rax
  test $1, %r15d
  jz 7f
  movq %xmm0, %rbx
  xor %rbx, %rax
7:
  mov $CPUMODEL_DONE_PORT, %dx
  outl %eax, %dx
6:
  hlt
  jmp 6b
snapshot_guest_end:

  .section .note.GNU-stack, "", @progbits
