// Host checks of the GEMM layout transforms (runtime/nvfp4_layout.hpp) against the
// checkpoint's own semantics.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "kernel_templates/e2m1_layout.h"
#include "runtime/nvfp4_layout.hpp"

using namespace marlinrt;
using namespace marlinrt::detail;

namespace {

// E4M3 (float8_e4m3fn) from its definition: bias 7, subnormals 2^-6 * m/8, 0x7F/0xFF NaN.
double e4m3_value(std::uint8_t b) {
  const int e = (b >> 3) & 0xF, m = b & 7;
  if (e == 15 && m == 7) return NAN;
  const double v = e == 0 ? std::ldexp(m / 8.0, -6) : std::ldexp(1 + m / 8.0, e - 7);
  return b & 0x80 ? -v : v;
}

double e2m1_value(std::uint8_t code) {
  static constexpr double mag[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};
  return code & 8 ? -mag[code & 7] : mag[code & 7];
}

// Finite E4M3 bytes: about half negative, one in eight +-0.
std::vector<std::uint8_t> random_scales(std::mt19937& rng, std::size_t count) {
  std::vector<std::uint8_t> scales(count);
  for (auto& b : scales) {
    do b = static_cast<std::uint8_t>(rng());
    while ((b & 0x7F) == 0x7F);
    if (rng() % 8 == 0) b &= 0x80;  // +-0
  }
  return scales;
}

}  // namespace

TEST_CASE("weight repack then unpack keeps every weight times its scale", "[layout]") {
  std::mt19937 rng(std::random_device{}());
  for (DType t : {DType::f16, DType::bf16})
    for (auto [n, k] : {std::pair<std::int64_t, std::int64_t>{64, 64},
                        {72, 48},
                        {130, 672},
                        {1, 16},
                        {200, 208}}) {
      INFO(dtype_name(t) << " layout, n " << n << " k " << k);
      const std::int64_t stride = k / 2 + 3, s_stride = k / 16 + 2;  // padded row strides
      std::vector<std::uint8_t> weight(static_cast<std::size_t>(n * stride));
      for (auto& b : weight) b = static_cast<std::uint8_t>(rng());
      const std::vector<std::uint8_t> scales =
          random_scales(rng, static_cast<std::size_t>(n * s_stride));
      const auto packed = repack_weights_host(weight, stride, scales, s_stride, n, k, t);
      CHECK(static_cast<std::int64_t>(packed.size() * 4) == repacked_weight_bytes(n, k));
      const auto codes = unpack_weights_host(packed, n, k, t);
      for (std::int64_t r = 0; r < n; ++r)
        for (std::int64_t c = 0; c < k; ++c) {
          const std::uint8_t original = (weight[r * stride + c / 2] >> (c % 2 * 4)) & 0xF;
          const double scale = e4m3_value(scales[r * s_stride + c / 16]);
          INFO("row " << r << " col " << c << " code " << int(original) << " scale " << scale);
          // The sign of the scale moved into the weight: the product is the checkpoint's.
          REQUIRE(e2m1_value(codes[r * k + c]) * std::fabs(scale) == e2m1_value(original) * scale);
          if (scale > 0) REQUIRE(codes[r * k + c] == original);
        }
    }
}

TEST_CASE("the kernel's decode of a repacked word gives each lane's mma B fragment", "[layout]") {
  // One 16x64 unit of random codes (scales 1.0). For every lane (g, t) and word j, the
  // kernel's own decode must put weight (n, k) of its B fragments into 16-bit register halves:
  // reg 0/1 = b0/b1 of n8 tile 2j (column 16j + g), reg 2/3 = b0/b1 of tile 2j+1 (column + 8),
  // b0 rows 2t, 2t+1 and b1 rows 2t+8, 2t+9 (the PTX ISA's m16n8k16 B layout), as the E2M1
  // value times 2^-14 (fp16) or 2^-126 (bf16): sign at bit 15, e1 e0 m at bits 11..9 / 8..6.
  std::mt19937 rng(std::random_device{}());
  const std::int64_t n = 64, k = 16;
  std::vector<std::uint8_t> weight(n * k / 2);
  for (auto& b : weight) b = static_cast<std::uint8_t>(rng());
  const std::vector<std::uint8_t> ones(n * k / 16, 0x38);  // E4M3 1.0: no sign folding
  auto code = [&](std::int64_t nn, std::int64_t kk) {
    return (weight[nn * k / 2 + kk / 2] >> (kk % 2 * 4)) & 0xF;
  };
  for (DType t : {DType::f16, DType::bf16}) {
    const int mag_shift = t == DType::f16 ? 9 : 6;
    const auto packed = repack_weights_host(weight, k / 2, ones, k / 16, n, k, t);
    for (int lane = 0; lane < 32; ++lane)
      for (int j = 0; j < 4; ++j) {
        unsigned int regs[4];
        if (t == DType::f16) {
          kern::decode_e2m1_word_fp16(packed[lane * 4 + j], regs);
        } else {
          kern::decode_e2m1_word_bf16(packed[lane * 4 + j], regs);
        }
        for (int reg = 0; reg < 4; ++reg)
          for (int h = 0; h < 2; ++h) {
            const std::int64_t nn = 16 * j + lane / 4 + (reg >= 2 ? 8 : 0);
            const std::int64_t kk = 2 * (lane % 4) + (reg % 2 == 1 ? 8 : 0) + h;
            const unsigned c = static_cast<unsigned>(code(nn, kk));
            const unsigned expect = (c & 8) << 12 | (c & 7) << mag_shift;
            INFO(dtype_name(t) << " lane " << lane << " word " << j << " reg " << reg << " half "
                               << h);
            REQUIRE(((regs[reg] >> (16 * h)) & 0xFFFF) == expect);
          }
      }
  }
}

TEST_CASE("scale repack places column 8*tile+g of each unit", "[layout]") {
  const std::int64_t n = 100, k = 80, stride = k / 16 + 1;
  std::mt19937 rng(std::random_device{}());
  const std::vector<std::uint8_t> scales = random_scales(rng, static_cast<std::size_t>(n * stride));
  const auto out = repack_scales_host(scales, stride, n, k);
  REQUIRE(static_cast<std::int64_t>(out.size()) == repacked_scale_bytes(n, k));
  const std::int64_t k_units = padded_k(k) / 16;
  for (std::int64_t nb = 0; nb < padded_n(n) / 64; ++nb)
    for (std::int64_t kb = 0; kb < k_units; ++kb)
      for (int g = 0; g < 8; ++g)
        for (int tile = 0; tile < 8; ++tile) {
          const std::int64_t col = nb * 64 + tile * 8 + g;
          // |scale| (zero and padding: 1.0, their weights are zero) as the f16 decode sees it.
          double expect =
              col < n && kb < k / 16 ? std::fabs(e4m3_value(scales[col * stride + kb])) : 1.0;
          if (expect == 0) expect = 1.0;
          const std::uint8_t code = out[((nb * k_units + kb) * 8 + g) * 8 + tile];
          REQUIRE(kernel_scale_value(code, DType::f16) == std::ldexp(expect, 7));
        }
}

TEST_CASE("kernel scale decode is exact for all 254 finite E4M3 bytes in both dtypes", "[layout]") {
  // NaN bytes (0x7F, 0xFF) never reach the kernel: prepare_nvfp4_linear rejects them.
  for (DType t : {DType::f16, DType::bf16}) {
    const int shift = t == DType::f16 ? 7 : 119;  // see kernel_templates/fp4_decode.cuh
    for (int b = 0; b < 256; ++b) {
      if ((b & 0x7F) == 0x7F) continue;
      INFO("byte " << b << " dtype " << dtype_name(t));
      const auto byte = static_cast<std::uint8_t>(b);
      const double expect = e4m3_value(byte);
      const double decoded = kernel_scale_value(scale_code(byte), t);
      REQUIRE(decoded == std::ldexp(expect == 0 ? 1.0 : std::fabs(expect), shift));
      // weight (sign folded) x scale carries the same power of two, 2^-7, in both dtypes.
      for (int c = 0; c < 16; ++c) {
        const auto code = static_cast<std::uint8_t>(c);
        const double w = kernel_weight_value(fold_scale_sign(code, byte), t) * decoded;
        REQUIRE(w == std::ldexp(e2m1_value(code) * expect, -7));
      }
    }
  }
}

TEST_CASE("kernel weight decode is exact for all 16 E2M1 codes", "[layout]") {
  for (int c = 0; c < 16; ++c) {
    const double v = e2m1_value(static_cast<std::uint8_t>(c));
    CHECK(kernel_weight_value(static_cast<std::uint8_t>(c), DType::f16) == std::ldexp(v, -14));
    CHECK(kernel_weight_value(static_cast<std::uint8_t>(c), DType::bf16) == std::ldexp(v, -126));
  }
}
