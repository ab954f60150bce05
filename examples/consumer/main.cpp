// Uses only the installed public headers: prints the library version and the
// FP4 backend marlinrt would pick for a few GPU generations.
#include <cstdio>

#include <marlinrt/marlinrt.hpp>

int main() {
  std::printf("marlinrt %s (kernel ABI %d)\n", marlinrt::version(), marlinrt::kernel_abi_version());
  for (const int cc : {75, 80, 86, 89, 90, 100}) {
    const marlinrt::BackendChoice choice = marlinrt::select_fp4_backend(cc);
    std::printf("sm_%d: %s\n", cc, choice.reason.c_str());
  }
  const marlinrt::BackendChoice hopper = marlinrt::select_fp4_backend(90);
  return hopper.backend == marlinrt::Fp4Backend::marlin && hopper.marlin_allowed ? 0 : 1;
}
