// The VMM process's own memory, apart from guest RAM.
#pragma once

#include <cstdint>

namespace cpumodel::vmm {

// Drops this process's page-table mappings of its own executable's code and clean read-only data
// (the r-x mappings of /proc/self/exe, and its r-- mappings no page of which was written) with
// MADV_DONTNEED, once start-up (option parsing, the catalog, CPUID tables,
// the kernel loader) is over. The pages stay in the page cache, shared with every other process
// running the binary; the ones the running VM still needs come back on their first use. Why: the
// kernel maps file pages in 64 KiB windows around each fault ("fault-around"), so code touched
// once at start-up, spread over the whole text, would otherwise stay in this process's RSS for
// the guest's lifetime (measured: 3.8 MiB of the 4.2 MiB the VMM had beside guest RAM). Only pages
// identical to the file are dropped: a mapping is dropped only when smaps shows no private
// (written) page in it, resident or swapped out, so nothing can be lost; data, relocated read-only
// data, code with a debugger's breakpoint and the heap are left alone. Returns the bytes of
// address space advised.
uint64_t release_startup_code();

}  // namespace cpumodel::vmm
