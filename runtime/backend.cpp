#include "marlinrt/backend.hpp"

#include <fmt/format.h>

namespace marlinrt {

BackendChoice select_fp4_backend(int cc) {
  const int major = cc / 10, minor = cc % 10;
  if (cc < 80) {
    return {Fp4Backend::unsupported, false,
            fmt::format("sm_{}{} is below sm_80: marlinrt needs Ampere or newer "
                        "(cp.async and bf16 tensor cores)",
                        major, minor)};
  }
  if (cc < 100) {
    return {Fp4Backend::marlin, true,
            fmt::format("sm_{}{} has no FP4 tensor cores: marlinrt's W4A16 path", major, minor)};
  }
  return {Fp4Backend::native_fp4, true,
          fmt::format("sm_{}{} has native FP4 tensor cores: prefer them; marlinrt's W4A16 path "
                      "still runs when asked",
                      major, minor)};
}

}  // namespace marlinrt
