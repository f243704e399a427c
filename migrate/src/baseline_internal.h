// Pieces of the baseline shared between its source files (not installed).
#pragma once

#include <span>
#include <string>
#include <vector>

#include "cpumodel/migrate/baseline.h"

namespace cpumodel::internal {

std::string join(const std::vector<std::string>& items, const char* sep = ", ");
// Features grouped by CPUID word, one line per word ("<indent>CPUID.07H:EBX  avx512f avx512dq ..."),
// names wrapped at `width` columns under the first name. For people: migrate-check's texts.
std::string feature_groups_text(const FeatureSet& features, const std::string& indent, size_t width = 100);
// Each reason on its own line after `indent`. When `group` is not empty, the reasons that begin
// with `lacks` are left out and `group` (their grouped form) stands where the first of them was.
std::string reason_lines(const std::vector<std::string>& reasons, const std::string& indent, const std::string& lacks,
                         const std::string& group);
// "h1, h2, h3 and 97 more" from host indices.
// `total` is how many hosts `idx` stands for (idx may be cut short already).
std::string host_list(std::span<const HostSummary> hosts, const std::vector<size_t>& idx, size_t max,
                      size_t total = SIZE_MAX);
// Hosts of `group` that lack any feature of `need` (all of them when max == SIZE_MAX), and how many.
std::vector<size_t> hosts_lacking(std::span<const HostSummary> hosts, const std::vector<size_t>& group,
                                  const FeatureSet& need, size_t max, size_t* count = nullptr);

// Every model of `vendor` (versioned, i.e. not host/max/base), best rank first. `gives[i]` is what
// models[i] gives a guest (its catalog expansion); empty: the definitions are used.
std::vector<ModelVerdict> rank_models(std::span<const ModelEntry> models, std::span<const FeatureSet> gives,
                                      std::span<const HostSummary> hosts, const std::vector<size_t>& group,
                                      const std::string& vendor, const FeatureSet& offered,
                                      const FeatureSet& also_removable);

// The invariant: every host of the group compares IDENTICAL or SUPERSET against the result (and,
// with a catalog, the result's -cpu string expands to exactly the result's features). Fills
// b.verdicts; a failure is an internal error.
Status check_baseline(Baseline& b, std::span<const HostSummary> hosts, const Catalog* catalog);

}  // namespace cpumodel::internal
