// The SPEC grammar (`--cpu`, `expand SPEC`): parse_spec must reject or accept any bytes without
// crashing; for an accepted spec, format_spec prints a spec that parses back to the same model,
// properties and edit outcome (parse(format(x)) == x up to the canonical order), and printing is
// idempotent. Accepted specs are also expanded through the real catalog (loaded once).
#include <algorithm>
#include <cstdint>
#include <memory>

#include "cpumodel/cpuid/features.h"
#include "cpumodel/cpuid/spec.h"
#include "cpumodel/models/catalog.h"
#include "fuzz_check.h"

namespace cpumodel::fuzz {
namespace {

bool same_properties(const CpuSpec& a, const CpuSpec& b) {
  if (a.properties.size() != b.properties.size()) return false;
  for (size_t i = 0; i < a.properties.size(); ++i)
    if (a.properties[i].key != b.properties[i].key || a.properties[i].value != b.properties[i].value)
      return false;
  return true;
}

const Catalog* catalog() {
  static std::unique_ptr<Catalog> c = [] {
    auto r = Catalog::load({CPUMODEL_SOURCE_DATA_DIR "/models"});
    // A catalog that does not load would silently leave expansion unfuzzed: fail instead.
    check(r.ok(), "the catalog (data/models) loads", r ? "" : r.error().message);
    return std::make_unique<Catalog>(std::move(*r));
  }();
  return c.get();
}

}  // namespace
}  // namespace cpumodel::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cpumodel;
  using namespace cpumodel::fuzz;
  std::string_view text = as_text(data, size);
  auto spec = parse_spec(text);
  if (!spec) {
    check_one_line(spec.error().message);
    return 0;
  }
  std::string printed = format_spec(*spec);
  auto again = parse_spec(printed);
  check(again.ok(), "format_spec output parses", printed + "\n" + (again ? "" : again.error().message));
  check(again->model == spec->model, "model survives format/parse", printed);
  check(same_properties(*spec, *again), "properties survive format/parse", printed);
  EditOutcome a = resolve_edits(*spec), b = resolve_edits(*again);
  check(a.enable == b.enable && a.disable == b.disable, "edit outcome survives format/parse", printed);
  check(format_spec(*again) == printed, "format_spec is idempotent", printed);
  // Expansion only for models the catalog knows: the "did you mean" search over every name is
  // costly under coverage instrumentation and would take most of the budget on random names.
  // Long unknown feature names are skipped for the same reason.
  bool cheap = std::all_of(spec->edits.begin(), spec->edits.end(), [](const FeatureEdit& e) {
    return e.name.size() <= 24 || find_feature(e.name).has_value();
  });
  const Catalog* c = catalog();
  if (c && cheap && c->find(spec->model)) {
    auto e = c->expand(*spec);
    if (e) check(!e->cpu.model.empty(), "an expansion names its model", std::string(text));
  }
  return 0;
}
