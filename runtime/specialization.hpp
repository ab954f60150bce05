// Specialization: a kernel key becomes a tiny CUDA translation unit that includes the
// embedded templates and instantiates the one kernel the key names.
#pragma once

#include <string>

#include "marlinrt/kernel_key.hpp"

namespace marlinrt::detail {

// Every unit defines `extern "C" __global__ void marlinrt_kernel(const <Params> params)`:
// one params struct by value, so a launch passes kernelParams = {&params}.
inline constexpr const char* kKernelEntryName = "marlinrt_kernel";

// The translation unit for `key` (validated first: throws Error(invalid_argument)).
std::string render_unit(const KernelKey& key);

}  // namespace marlinrt::detail
