// Pieces of the snapshot codec shared between its source files (not installed).
#pragma once

#include <string>
#include <string_view>

#include "cpumodel/cpuid/result.h"
#include "cpumodel/migrate/snapshot.h"

namespace cpumodel::internal {

// The Protobuf payload (cpumodel.snap.Snapshot) of a snapshot, and back. The parser catches
// everything Protobuf can throw and checks what the schema cannot (sizes, parallel lists).
std::string snapshot_payload(const Snapshot& s);
Result<Snapshot> parse_snapshot_payload(std::string_view bytes, const std::string& name);

}  // namespace cpumodel::internal
