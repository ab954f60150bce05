#include "runtime/nvfp4_layout.hpp"

#include <cmath>
#include <limits>

#include "kernel_templates/e2m1_layout.h"
#include "kernel_templates/scale_code.h"
#include "runtime/fail.hpp"

namespace marlinrt::detail {
namespace {

std::uint8_t code_at(std::span<const std::uint8_t> weight, std::int64_t stride, std::int64_t n,
                     std::int64_t k, std::int64_t rows, std::int64_t cols) {
  if (n >= rows || k >= cols) return 0;
  return (weight[n * stride + k / 2] >> ((k & 1) * 4)) & 0xF;
}

// Value of a 16-bit pattern in fp16 or bf16, exactly.
double half_bits_value(std::uint32_t bits, DType t) {
  const bool neg = bits & 0x8000;
  const int exp_bits = t == DType::f16 ? 5 : 8, man_bits = t == DType::f16 ? 10 : 7;
  const int bias = (1 << (exp_bits - 1)) - 1;
  const int e = (bits >> man_bits) & ((1 << exp_bits) - 1);
  const int m = bits & ((1 << man_bits) - 1);
  if (e == (1 << exp_bits) - 1) return m ? std::numeric_limits<double>::quiet_NaN() : INFINITY;
  const double v = e == 0 ? std::ldexp(m, 1 - bias - man_bits)
                          : std::ldexp(m + (1 << man_bits), e - bias - man_bits);
  return neg ? -v : v;
}

}  // namespace

std::uint8_t scale_code(std::uint8_t e4m3) { return kern::scale_code(e4m3); }

std::uint8_t fold_scale_sign(std::uint8_t e2m1, std::uint8_t e4m3) {
  return static_cast<std::uint8_t>(kern::fold_scale_sign(e2m1, e4m3));
}

namespace {

// Fragment register reg, half h of word j of lane (g, t) holds weight (n0 + col, k0 + row):
// see kernel_templates/repack.cuh.
constexpr int kRegColumn[4] = {0, 0, 8, 8};
constexpr int kRegRow[4] = {0, 8, 0, 8};

}  // namespace

std::vector<std::uint32_t> repack_weights_host(std::span<const std::uint8_t> weight,
                                               std::int64_t row_stride,
                                               std::span<const std::uint8_t> scales,
                                               std::int64_t scale_row_stride, std::int64_t n,
                                               std::int64_t k, DType activation) {
  const bool bf16 = activation == DType::bf16;
  const std::int64_t np = padded_n(n), kp = padded_k(k), k_units = kp / 16;
  std::vector<std::uint32_t> out(static_cast<std::size_t>(np * kp / 8));
  for (std::int64_t nb = 0; nb < np / 64; ++nb)
    for (std::int64_t kb = 0; kb < k_units; ++kb)
      for (int lane = 0; lane < 32; ++lane)
        for (int j = 0; j < 4; ++j) {
          const int g = lane / 4, t = lane % 4;
          const std::int64_t n0 = nb * 64 + 16 * j + g, k0 = kb * 16 + 2 * t;
          std::uint32_t w = 0;
          for (int reg = 0; reg < 4; ++reg)
            for (int h = 0; h < 2; ++h) {
              const std::int64_t nn = n0 + kRegColumn[reg], kk = k0 + kRegRow[reg] + h;
              std::uint8_t code = code_at(weight, row_stride, nn, kk, n, k);
              if (nn < n && kk < k) {
                code = fold_scale_sign(code, scales[nn * scale_row_stride + kk / 16]);
              }
              w |= kern::place_e2m1(bf16, reg, h, code);
            }
          out[static_cast<std::size_t>(((nb * k_units + kb) * 32 + lane) * 4 + j)] = w;
        }
  return out;
}

std::vector<std::uint8_t> unpack_weights_host(std::span<const std::uint32_t> packed, std::int64_t n,
                                              std::int64_t k, DType activation) {
  const bool bf16 = activation == DType::bf16;
  const std::int64_t k_units = padded_k(k) / 16;
  std::vector<std::uint8_t> codes(static_cast<std::size_t>(n * k));
  for (std::int64_t idx = 0; idx < static_cast<std::int64_t>(packed.size()); ++idx) {
    const int j = idx & 3, lane = (idx >> 2) & 31;
    const std::int64_t unit = idx >> 7, kb = unit % k_units, nb = unit / k_units;
    for (int reg = 0; reg < 4; ++reg)
      for (int h = 0; h < 2; ++h) {
        const std::int64_t nn = nb * 64 + 16 * j + lane / 4 + kRegColumn[reg];
        const std::int64_t kk = kb * 16 + 2 * (lane % 4) + kRegRow[reg] + h;
        if (nn < n && kk < k) {
          codes[nn * k + kk] =
              static_cast<std::uint8_t>(kern::extract_e2m1(bf16, packed[idx], reg, h));
        }
      }
  }
  return codes;
}

std::vector<std::uint8_t> repack_scales_host(std::span<const std::uint8_t> scales,
                                             std::int64_t row_stride, std::int64_t n,
                                             std::int64_t k) {
  const std::int64_t np = padded_n(n), k_units = padded_k(k) / 16;
  std::vector<std::uint8_t> out(static_cast<std::size_t>(np / 64 * k_units * 64));
  for (std::int64_t idx = 0; idx < static_cast<std::int64_t>(out.size()); ++idx) {
    const int tile = idx & 7, g = (idx >> 3) & 7;
    const std::int64_t unit = idx >> 6, kb = unit % k_units, nb = unit / k_units;
    const std::int64_t nn = nb * 64 + tile * 8 + g;
    out[idx] = scale_code(nn < n && kb < k / 16 ? scales[nn * row_stride + kb] : 0x38);
  }
  return out;
}

double kernel_scale_value(std::uint8_t code, DType activation) {
  // Decode the code as the kernel does, from an even and from an odd byte of a scale word.
  const bool bf16 = activation == DType::bf16;
  const std::uint32_t odd = kern::decode_odd_scales(bf16, std::uint32_t{code} << 24);
  const std::uint32_t even = kern::decode_even_scales(bf16, code);
  if (odd >> 16 != (even & 0xFFFF)) {
    fail(Status::internal, "scale code {:#04x}: the odd and even byte decodes disagree", code);
  }
  return half_bits_value(odd >> 16, activation);
}

double kernel_weight_value(std::uint8_t code, DType activation) {
  const std::uint32_t t = static_cast<std::uint32_t>(code & 0xF) << 12;
  const std::uint32_t h = activation == DType::f16 ? (t & 0x8000) | ((t >> 3) & 0x0E00)
                                                   : (t & 0x8000) | ((t >> 6) & 0x01C0);
  return half_bits_value(h, activation);
}

}  // namespace marlinrt::detail
