/* Tiny guests for the VMM tests: each ends one way (done, triple fault, spin, unmapped write,
   wrong port) or misbehaves on purpose (the hostile guests of issue 9: hlt with interrupts off,
   an I/O storm, code fetched from outside RAM, an IDT outside RAM, one vCPU faulting while the
   other halts). 64-bit code, position-independent, copied by the test to BootLayout::kCode. */
#include "cpumodel/vmm/guest_abi.h"

  .section .rodata.cpumodel_test_guests, "a"
  .code64
  .globl guest_done_begin, guest_done_end, guest_triple_begin, guest_triple_end
  .globl guest_spin_begin, guest_spin_end, guest_mmio_begin, guest_mmio_end
  .globl guest_port_begin, guest_port_end
  .globl guest_hlt_begin, guest_hlt_end, guest_iostorm_begin, guest_iostorm_end
  .globl guest_fetch_begin, guest_fetch_end, guest_badidt_begin, guest_badidt_end
  .globl guest_mixed_begin, guest_mixed_end

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

/* Interrupts off, then hlt for ever: only the VMM's timeout (or its kick) ends it. */
guest_hlt_begin:
  cli
1:
  hlt
  jmp 1b
guest_hlt_end:

/* An I/O storm: `out` to port 0x80 and `in` from port 0x81 as fast as the exits go, for ever.
   RBX counts the round trips (visible in the register dump). */
guest_iostorm_begin:
  xorl %ebx, %ebx
1:
  incq %rbx
  movl %ebx, %eax
  outb %al, $0x80
  inb $0x81, %al
  jmp 1b
guest_iostorm_end:

/* Jumps to 512 MiB: identity-mapped, no RAM there, so no instruction to fetch. */
guest_fetch_begin:
  movl $0x20000000, %eax
  jmp *%rax
guest_fetch_end:

/* Loads an IDT that lies outside guest RAM, then raises #UD: delivering it reads the IDT there. */
guest_badidt_begin:
  lidt 2f(%rip)
  ud2
2:
  .word 0x0fff
  .quad 0x20000000
guest_badidt_end:

/* vCPU 0 (RDI = 0) triple-faults; every other vCPU halts with interrupts off for ever. */
guest_mixed_begin:
  testl %edi, %edi
  jnz 1f
  ud2
1:
  cli
2:
  hlt
  jmp 2b
guest_mixed_end:

  .section .note.GNU-stack, "", @progbits
