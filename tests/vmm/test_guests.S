/* Tiny guests for the VMM tests: each ends one way (done, triple fault, spin, unmapped write,
   wrong port). 64-bit code, copied by the test to BootLayout::kCode. */
#include "cpumodel/vmm/guest_abi.h"

  .section .rodata.cpumodel_test_guests, "a"
  .code64
  .globl guest_done_begin, guest_done_end, guest_triple_begin, guest_triple_end
  .globl guest_spin_begin, guest_spin_end, guest_mmio_begin, guest_mmio_end
  .globl guest_port_begin, guest_port_end

/* Writes 0x1234 + RDI to the done port. */
guest_done_begin:
  movl $0x1234, %eax
  addl %edi, %eax
  movw $CPUMODEL_DONE_PORT, %dx
  outl %eax, %dx
1:
  hlt
  jmp 1b
guest_done_end:

/* #UD with no IDT: #GP, #DF, then a triple fault. */
guest_triple_begin:
  ud2
guest_triple_end:

guest_spin_begin:
1:
  jmp 1b
guest_spin_end:

/* A write to 512 MiB: identity-mapped by the page tables, but no RAM there. */
guest_mmio_begin:
  movl $0x20000000, %eax
  movl $0xdeadbeef, (%rax)
1:
  jmp 1b
guest_mmio_end:

/* An `out` to a port nobody handles. */
guest_port_begin:
  movl $7, %eax
  movw $0x80, %dx
  outb %al, %dx
1:
  jmp 1b
guest_port_end:

  .section .note.GNU-stack, "", @progbits
