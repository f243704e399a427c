// Shared between the bundle codec and the summary fast path; never installed (it names pb types).
#pragma once

#include <string>
#include <string_view>

#include "bundle.pb.h"
#include "cpumodel/cpuid/result.h"
#include "cpumodel/cpuid/table.h"

namespace cpumodel::internal {

// Parses and validates (magic, version, host count) a bundle into `b`.
Status parse_bundle(pb::Bundle& b, std::string_view data, const std::string& name);

// The word lists of one host are what encode_bundle writes: CPUID entries 6 words each, sorted by
// (leaf, subleaf) without repeats, subleaf 0 on leaves that take none; MSRs as index/value pairs with
// 32-bit indexes, sorted without repeats. Both readers (decode_bundle and the summary fast path)
// call this first, so they accept exactly the same bundles. Errors name `where`.
Status validate_host_words(const pb::Host& h, const std::string& where);

// Reads a packed CPUID word list (6 words per entry) into a table; errors name `where`.
Result<CpuidTable> unpack_table(const google::protobuf::RepeatedField<uint32_t>& words, const std::string& where);

}  // namespace cpumodel::internal
