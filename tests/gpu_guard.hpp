// [gpu] tests call MARLINRT_REQUIRE_GPU() first: without a GPU they warn and
// return, so a mixed run on a GPU-less machine stays honest (the ctest entry
// "gpu" is reported as skipped, see tests/main.cpp).
#pragma once

#include <string>

namespace marlinrt::test {
bool gpu_available();
std::string gpu_unavailable_reason();
}  // namespace marlinrt::test

#define MARLINRT_REQUIRE_GPU()                                                        \
  do {                                                                                \
    if (!::marlinrt::test::gpu_available()) {                                         \
      WARN("skipped: no GPU (" << ::marlinrt::test::gpu_unavailable_reason() << ")"); \
      return;                                                                         \
    }                                                                                 \
  } while (0)
