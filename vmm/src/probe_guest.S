/* The probe guest: CPUID over a list of (leaf, subleaf) plus every leaf of the standard ranges,
   results to memory, one `out` at the end (see cpumodel/vmm/guest_abi.h for the contract).
   The same body is assembled twice, for 64-bit long mode and for 32-bit protected mode (CPU
   models without `lm`). It uses only EAX..EDX, ESI, EDI, EBP, ESP (as a pointer, not a stack) and
   32-bit addressing (no inc/dec-by-register), so both copies behave identically. Position independent: the VMM copies
   the bytes between the begin/end symbols into guest memory. */
#include "cpumodel/vmm/guest_abi.h"

/* Store EAX..EDX as the record for leaf EBP, subleaf \subleaf, and advance ESI. */
.macro STORE_RECORD subleaf
  movl %eax, 8(%esi)
  movl %ebx, 12(%esi)
  movl %ecx, 16(%esi)
  movl %edx, 20(%esi)
  movl %ebp, (%esi)
  movl \subleaf, 4(%esi)
  addl $CPUMODEL_PROBE_RECORD_SIZE, %esi
.endm

/* Leaves start[\idx] .. max of the range at \base (max = CPUID(\base).EAX when plausible). */
.macro PROBE_RANGE idx, base
  movl $\base, %eax
  xorl %ecx, %ecx
  cpuid
  movl %eax, %edi                       /* max leaf the guest reads for this range */
  subl $\base, %eax
  cmpl $(CPUMODEL_PROBE_RANGE_MAX - 1), %eax
  jbe 4f
  movl $\base, %edi                     /* below base or implausibly far: not a real range */
4:
  movl (8 + 4 * \idx)(%esp), %ebp        /* start[idx] */
5:
  cmpl %edi, %ebp
  ja 6f
  movl %ebp, %eax
  xorl %ecx, %ecx
  cpuid
  STORE_RECORD $0
  addl $1, %ebp
  jmp 5b
6:
.endm

/* Query \k of a block: its leaf and subleaf were written by the VMM into its record, the guest
   fills in the registers. Every copy has the same length (32-bit displacements throughout), so
   the VMM can start a block at any copy. */
.macro QUERY k
  {disp32} movl (CPUMODEL_PROBE_RECORD_SIZE * \k)(%esi), %eax
  {disp32} movl (CPUMODEL_PROBE_RECORD_SIZE * \k + 4)(%esi), %ecx
  cpuid
  {disp32} movl %eax, (CPUMODEL_PROBE_RECORD_SIZE * \k + 8)(%esi)
  {disp32} movl %ebx, (CPUMODEL_PROBE_RECORD_SIZE * \k + 12)(%esi)
  {disp32} movl %ecx, (CPUMODEL_PROBE_RECORD_SIZE * \k + 16)(%esi)
  {disp32} movl %edx, (CPUMODEL_PROBE_RECORD_SIZE * \k + 20)(%esi)
.endm

.macro PROBE_BODY bits
  /* The queries, unrolled: seven instructions each (on kvm_pvm every guest instruction is
     emulated, ~1-1.5 us each; a loop cost ten per query). The VMM starts the vCPU at the copy
     that makes the rest of the block run exactly the first pass's queries, with ESI moved back
     to match, and EBP = how many whole blocks follow (guest_abi.h). */
cpumodel_probe\bits\()_queries:
  .set query_index, 0
  .rept CPUMODEL_PROBE_UNROLL
  QUERY query_index
  .set query_index, query_index + 1
  .endr
cpumodel_probe\bits\()_queries_end:
  addl $(CPUMODEL_PROBE_RECORD_SIZE * CPUMODEL_PROBE_UNROLL), %esi
  subl $1, %ebp
  jns cpumodel_probe\bits\()_queries
  PROBE_RANGE 0, 0x00000000
  PROBE_RANGE 1, 0x40000000
  PROBE_RANGE 2, 0x80000000
  PROBE_RANGE 3, 0xc0000000
  movl %esi, %eax
  movw $CPUMODEL_DONE_PORT, %dx
  outl %eax, %dx
3:
  hlt
  jmp 3b
.endm

  .section .rodata.cpumodel_probe, "a"
  .globl cpumodel_probe64_begin, cpumodel_probe64_end, cpumodel_probe32_begin, cpumodel_probe32_end
  .globl cpumodel_probe64_queries, cpumodel_probe64_queries_end, cpumodel_probe32_queries, cpumodel_probe32_queries_end

  .code64
cpumodel_probe64_begin:
  PROBE_BODY 64
cpumodel_probe64_end:

  .code32
cpumodel_probe32_begin:
  PROBE_BODY 32
cpumodel_probe32_end:

  .code64
  .section .note.GNU-stack, "", @progbits
