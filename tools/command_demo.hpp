// `marlinrt demo`: show the library working. Without a GPU: info plus compiling
// the weight-preparation kernels into the cache. With a GPU: a random NVFP4
// layer, prepared and run, checked against a host computation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace marlinrt::cli {

struct DemoOptions {
  std::vector<std::string> archs;  // without a GPU: archs to compile for (default sm_80..sm_90)
  std::string dtype = "bf16";      // activation dtype
  std::int64_t m = 16;             // tokens
  std::int64_t n = 4096;           // output features
  std::int64_t k = 4096;           // input features
  unsigned seed = 1;
};

int run_demo(const DemoOptions& options);

}  // namespace marlinrt::cli
