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

.macro PROBE_BODY
  /* The queries: the VMM wrote each one's leaf and subleaf into its record, so a query costs
     ten instructions (on kvm_pvm every guest instruction is emulated: 17 before, ~1.5 us each). */
  imull $CPUMODEL_PROBE_RECORD_SIZE, (%edi), %ebp
  addl %esi, %ebp                       /* the end of the query records */
  cmpl %ebp, %esi
  jae 2f
1:
  movl (%esi), %eax
  movl 4(%esi), %ecx
  cpuid
  movl %eax, 8(%esi)
  movl %ebx, 12(%esi)
  movl %ecx, 16(%esi)
  movl %edx, 20(%esi)
  addl $CPUMODEL_PROBE_RECORD_SIZE, %esi
  cmpl %ebp, %esi
  jb 1b
2:
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

  .code64
cpumodel_probe64_begin:
  PROBE_BODY
cpumodel_probe64_end:

  .code32
cpumodel_probe32_begin:
  PROBE_BODY
cpumodel_probe32_end:

  .code64
  .section .note.GNU-stack, "", @progbits
