/* The contract between this VMM and the guests it runs (shared by C++ and the .S payloads, so
   macros only). A guest ends by writing one 32-bit value to CPUMODEL_DONE_PORT (`out`); the
   vCPU thread stops there and never resumes the guest. */
#ifndef CPUMODEL_VMM_GUEST_ABI_H
#define CPUMODEL_VMM_GUEST_ABI_H

#define CPUMODEL_DONE_PORT 0x0ce0

/* Probe guest: at entry EDI = ESP = the header: u32 count, u32 0, u32 start[4]; ESI and EBP as
   below. Each vCPU has its own records of 24 bytes (leaf, subleaf, eax, ebx, ecx, edx), room for
   count + 4 * 256 of them. The VMM has written the leaf and subleaf of each of the first `count`
   records (the queries); the guest runs CPUID for each and fills in its
   registers, in blocks of CPUMODEL_PROBE_UNROLL unrolled copies of the query code, copy k using
   the record at ESI + 24 * k. The first pass runs the first count - UNROLL * EBP queries: the
   VMM starts the vCPU (RIP) at the copy that leaves that many, with ESI moved back as far as
   that copy's offset; each pass then adds 24 * UNROLL to ESI, and while EBP, decremented, is not
   negative, runs a whole block again. Then for each range (basic 0, hypervisor 0x40000000,
   extended 0x80000000, Centaur 0xC0000000, in that order) it runs every leaf from start[i] up
   to the max leaf CPUID(base).EAX reports (a max not within base..base+255 counts as base),
   writing whole records after the queries, and writes the address after its last record to
   CPUMODEL_DONE_PORT. The VMM lists every leaf up to the table's own max, so start[i] is the
   table's max + 1 (or the base when the table lacks the range): each leaf is run once. It uses
   no stack (ESP only points at the header). */
#define CPUMODEL_PROBE_RECORD_SIZE 24
#define CPUMODEL_PROBE_RANGE_MAX 256
#define CPUMODEL_PROBE_RANGES 4
#define CPUMODEL_PROBE_HEADER 24
#define CPUMODEL_PROBE_UNROLL 128

#endif
