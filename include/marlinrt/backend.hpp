// Which FP4 execution path suits a GPU.
#pragma once

#include <string>

namespace marlinrt {

enum class Fp4Backend {
  marlin,       // SM80..SM9x: this library's W4A16 path
  native_fp4,   // SM100+: the GPU has FP4 tensor cores; marlin still allowed on request
  unsupported,  // below SM80
};

struct BackendChoice {
  Fp4Backend backend;
  bool marlin_allowed;  // can marlinrt run on this GPU at all
  std::string reason;   // one sentence for logs and `marlinrt info`
};

// `compute_capability` is major*10+minor (e.g. 90 for H100).
BackendChoice select_fp4_backend(int compute_capability);

}  // namespace marlinrt
