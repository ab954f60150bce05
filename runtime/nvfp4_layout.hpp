// The GEMM's weight and scale layout (kernel_templates/repack.cuh), on the host:
// padded extents, and reference implementations of the repack transforms used by
// tests to check the GPU kernels byte for byte.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "marlinrt/dtype.hpp"

namespace marlinrt::detail {

// N is padded to a multiple of 128, K to a multiple of 64; tiles then divide the padded
// extents. 128 rather than 64 columns lets every layer use tiles of 128 columns: at
// N = 10304 (Nemotron Nano in_proj) only 64-column tiles divided the old padding, and they
// ran ~1.5x slower at M = 1 (H200); the extra columns cost at most 64 zero columns.
inline constexpr std::int64_t kLayoutPadN = 128;
inline constexpr std::int64_t kLayoutPadK = 64;

inline std::int64_t padded_n(std::int64_t n) {
  return (n + kLayoutPadN - 1) / kLayoutPadN * kLayoutPadN;
}
inline std::int64_t padded_k(std::int64_t k) {
  return (k + kLayoutPadK - 1) / kLayoutPadK * kLayoutPadK;
}

inline std::int64_t repacked_weight_bytes(std::int64_t n, std::int64_t k) {
  return padded_n(n) * padded_k(k) / 2;
}
inline std::int64_t repacked_scale_bytes(std::int64_t n, std::int64_t k) {
  return padded_n(n) * padded_k(k) / 16;
}

// The kernel's unsigned scale code of an E4M3 byte: E << 3 | M for 2^(E - 22) * (1 + M/8)
// (repack.cuh). Zero gives the code of 1.0; the sign is dropped (see fold_scale_sign).
std::uint8_t scale_code(std::uint8_t e4m3);
// An E2M1 code with its block scale's sign folded in: negated for a negative scale, +0 for a
// zero scale, so that code * |scale| == original code * scale.
std::uint8_t fold_scale_sign(std::uint8_t e2m1, std::uint8_t e4m3);

// weight: [n, k/2] bytes (row stride in bytes), E2M1 pairs, element 2i in the low nibble;
// scales: [n, k/16] E4M3 bytes (row stride in bytes), whose signs fold into the weights.
// The word layout depends on the activation dtype (kernel_templates/e2m1_layout.h).
std::vector<std::uint32_t> repack_weights_host(std::span<const std::uint8_t> weight,
                                               std::int64_t row_stride,
                                               std::span<const std::uint8_t> scales,
                                               std::int64_t scale_row_stride, std::int64_t n,
                                               std::int64_t k, DType activation);
// Inverse of repack_weights_host: the [n, k] E2M1 codes (one per byte), signs folded.
std::vector<std::uint8_t> unpack_weights_host(std::span<const std::uint32_t> packed, std::int64_t n,
                                              std::int64_t k, DType activation);

// scales: [n, k/16] E4M3 bytes (row stride in bytes) -> scale codes in the kernel's layout.
std::vector<std::uint8_t> repack_scales_host(std::span<const std::uint8_t> scales,
                                             std::int64_t row_stride, std::int64_t n,
                                             std::int64_t k);

// What the kernel's in-register decode (fp4_decode.cuh) produces for a scale code, emulated
// with the same bit placement, as a double: |scale| times 2^7 (f16) or 2^119 (bf16).
double kernel_scale_value(std::uint8_t code, DType activation);
// Same for an E2M1 code: the value times 2^-14 (f16) or 2^-126 (bf16).
double kernel_weight_value(std::uint8_t e2m1, DType activation);

}  // namespace marlinrt::detail
