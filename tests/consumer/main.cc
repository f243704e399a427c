// Uses each installed library once: parse a spec, expand it from the installed catalog, build
// its guest CPUID, name the KVM backend. Prints what it found; exits non-zero on any failure.
#include <cstdio>
#include <cstdlib>

#include "cpumodel/cpuid/features.h"
#include "cpumodel/cpuid/guest_cpuid.h"
#include "cpumodel/cpuid/smp.h"
#include "cpumodel/models/catalog.h"
#include "cpumodel/vmm/kvm.h"

int main() {
  using namespace cpumodel;
  setenv("CPUMODEL_DATA_DIR", CPUMODEL_DATA_DIR, 1);
  auto cat = Catalog::load_default();
  if (!cat) return std::fprintf(stderr, "catalog: %s\n", cat.error().message.c_str()), 1;
  auto exp = cat->expand("Haswell-noTSX,+aes,-avx");
  if (!exp) return std::fprintf(stderr, "expand: %s\n", exp.error().message.c_str()), 1;
  auto smp = parse_smp("4,sockets=2,cores=2");
  if (!smp) return 1;
  auto guest = build_guest_cpuid(exp->cpu, *smp, nullptr);
  if (!guest) return std::fprintf(stderr, "cpuid: %s\n", guest.error().message.c_str()), 1;
  bool avx2 = exp->cpu.features.has("avx2");
  std::printf("model %s, %zu features, avx2 %s, %zu vCPU tables, backend %s\n", exp->cpu.model.c_str(),
              exp->cpu.features.count(), avx2 ? "on" : "off", guest->tables.size(),
              vmm::backend_name(vmm::detect_backend()));
  return avx2 || guest->tables.size() != 4 ? 1 : 0;
}
