// Decoding a CPUID table for people and programs: vendor, signature (family/model/stepping with
// the extended fields), brand string, named features, set bits the dictionary does not name, and
// the hypervisor leaves. Pure functions over a table; `cpumodel decode` prints these.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cpumodel/cpuid/features.h"
#include "cpumodel/cpuid/json.h"
#include "cpumodel/cpuid/table.h"

namespace cpumodel {

struct CpuSignature {
  uint32_t raw = 0;  // CPUID.01H:EAX
  unsigned family = 0, model = 0, stepping = 0;  // display values
  unsigned base_family = 0, ext_family = 0, base_model = 0, ext_model = 0;
};

// Family = base + extended when base is 0xF; model = extended << 4 | base when family >= 6
// (Intel SDM vol. 2A CPUID "Processor Signature"; AMD APM vol. 3 "CPUID Fn0000_0001_EAX"; Linux
// x86_family()/x86_model(), which also covers Zhaoxin's family 7).
CpuSignature decode_signature(uint32_t leaf1_eax);

struct UnknownBit {
  FeatureWord word;
  unsigned bit;
  std::string text;  // "CPUID.07H:ECX[bit 22]"
};

struct HypervisorInfo {
  bool flag = false;      // CPUID.01H:ECX[bit 31]
  std::string signature;  // CPUID.40000000H EBX,ECX,EDX ("KVMKVMKVM"), empty if none
  uint32_t max_leaf = 0;  // CPUID.40000000H:EAX
};

struct DecodedCpu {
  std::string vendor;  // "GenuineIntel", "AuthenticAMD", ...
  CpuSignature signature;
  std::string brand;   // CPUID.80000002H-80000004H, trimmed
  uint32_t max_basic = 0, max_extended = 0;
  FeatureSet features;
  std::vector<UnknownBit> unknown_bits;  // in feature-word order, then bit order
  HypervisorInfo hypervisor;
};

DecodedCpu decode_cpu(const CpuidTable& table, const MsrMap& msrs = {});
// The brand string of a table ("" when the extended leaves do not reach 0x80000004).
std::string brand_string(const CpuidTable& table);

// Human output: an aligned summary, then features grouped by feature word.
std::string decode_to_text(const DecodedCpu& d, const std::string& title = "");
// JSON fields per CLI.md: vendor, family, model_number, stepping, brand, features, unknown_bits
// (plus signature, max_basic_leaf, max_extended_leaf, hypervisor).
void decode_to_json(const DecodedCpu& d, JsonWriter& w);

}  // namespace cpumodel
