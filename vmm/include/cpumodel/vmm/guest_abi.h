/* The contract between this VMM and the guests it runs (shared by C++ and the .S payloads, so
   macros only). A guest ends by writing one 32-bit value to CPUMODEL_DONE_PORT (`out`); the
   vCPU thread stops there and never resumes the guest. */
#ifndef CPUMODEL_VMM_GUEST_ABI_H
#define CPUMODEL_VMM_GUEST_ABI_H

#define CPUMODEL_DONE_PORT 0x0ce0

/* Probe guest: at entry EDI = query list (u32 count, u32 0, then count x {u32 leaf, u32 subleaf}),
   ESI = where records go (count + 4 * 256 records of 24 bytes: leaf, subleaf, eax, ebx, ecx, edx).
   It runs CPUID for every query, then for every leaf of the basic (0), hypervisor (0x40000000),
   extended (0x80000000) and Centaur (0xC0000000) ranges up to the max leaf it reads there
   (a range whose max is not within base+1..base+255 contributes only its base leaf), and writes
   the address after its last record to CPUMODEL_DONE_PORT. */
#define CPUMODEL_PROBE_RECORD_SIZE 24
#define CPUMODEL_PROBE_RANGE_MAX 256
#define CPUMODEL_PROBE_RANGES 4

#endif
