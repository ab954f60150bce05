// What a PreparedLinear owns: the layer in the GEMM's layout on one device.
#pragma once

#include <cstdint>

#include "marlinrt/linear.hpp"
#include "runtime/device_buffer.hpp"

namespace marlinrt {

struct PreparedLinear::Impl {
  detail::DeviceBuffer weights;  // kernel_templates/repack.cuh layout
  detail::DeviceBuffer scales;   // E4M3 bytes, repack.cuh layout
  detail::DeviceBuffer bias;     // [n] activation dtype; empty when the layer has none
  std::int64_t n = 0, k = 0, n_padded = 0, k_padded = 0;
  DType activation = DType::bf16;
  int device = -1;
  float global_scale = 0.f;  // weight_scale_2 * 2^7, see kernel_templates/fp4_decode.cuh
};

}  // namespace marlinrt
