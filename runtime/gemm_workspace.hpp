// Scratch memory of the striped GEMM: fp32 partial sums and per-tile arrival
// counters. One workspace per (device, stream), so concurrent streams never share
// counters; it only grows, so steady-state calls allocate nothing.
#pragma once

#include <cstdint>

#include "marlinrt/runtime.hpp"

namespace marlinrt::detail {

struct GemmWorkspace {
  float* partials = nullptr;
  int* locks = nullptr;  // zero between launches (the kernel's last arriver resets them)
};

// At least `floats` partial slots and `locks` counters for launches on `stream` of the
// current device. Growing synchronizes `stream` first (the old buffers may be in use).
GemmWorkspace gemm_workspace(Stream stream, std::int64_t floats, std::int64_t locks);

}  // namespace marlinrt::detail
