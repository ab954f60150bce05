// 16-bit float conversions on the host (IEEE binary16 and bfloat16), rounding
// to nearest even, for building inputs and reading outputs of GPU kernels.
#pragma once

#include <cstdint>

#include "marlinrt/dtype.hpp"

namespace marlinrt::cli {

std::uint16_t f16_from_float(float value) noexcept;
float f16_to_float(std::uint16_t bits) noexcept;
std::uint16_t bf16_from_float(float value) noexcept;
float bf16_to_float(std::uint16_t bits) noexcept;

// Dispatch on DType::f16 / DType::bf16.
std::uint16_t half_from_float(DType dtype, float value) noexcept;
float half_to_float(DType dtype, std::uint16_t bits) noexcept;

}  // namespace marlinrt::cli
