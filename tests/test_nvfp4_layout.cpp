// Host checks of the GEMM layout transforms (runtime/nvfp4_layout.hpp) against the
// checkpoint's own semantics.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

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
  for (auto [n, k] : {std::pair<std::int64_t, std::int64_t>{64, 64}, {72, 48}, {130, 672},
                      {1, 16}, {200, 208}}) {
    const std::int64_t stride = k / 2 + 3, s_stride = k / 16 + 2;  // padded row strides
    std::vector<std::uint8_t> weight(static_cast<std::size_t>(n * stride));
    for (auto& b : weight) b = static_cast<std::uint8_t>(rng());
    const std::vector<std::uint8_t> scales =
        random_scales(rng, static_cast<std::size_t>(n * s_stride));
    const auto packed = repack_weights_host(weight, stride, scales, s_stride, n, k);
    CHECK(static_cast<std::int64_t>(packed.size() * 4) == repacked_weight_bytes(n, k));
    const auto codes = unpack_weights_host(packed, n, k);
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

TEST_CASE("repacked words hold each lane's mma B fragment", "[layout]") {
  // One 16x64 unit with code = f(n, k) distinct per position modulo 16: check the nibble
  // placement rule of repack.cuh for lane 5 (g = 1, t = 1), word 2 (tiles 4 and 5).
  const std::int64_t n = 64, k = 16;
  std::vector<std::uint8_t> weight(n * k / 2);
  auto code = [](std::int64_t nn, std::int64_t kk) { return (nn * 3 + kk * 5) & 0xF; };
  for (std::int64_t r = 0; r < n; ++r)
    for (std::int64_t c = 0; c < k; ++c)
      weight[r * k / 2 + c / 2] |= static_cast<std::uint8_t>(code(r, c) << (c % 2 * 4));
  const std::vector<std::uint8_t> ones(n * k / 16, 0x38);  // E4M3 1.0: no sign folding
  const auto packed = repack_weights_host(weight, k / 2, ones, k / 16, n, k);
  const std::uint32_t w = packed[5 * 4 + 2];
  const std::int64_t n0 = 16 * 2 + 1, n1 = n0 + 8, k0 = 2;
  CHECK(((w >> 12) & 0xF) == code(n0, k0));
  CHECK(((w >> 28) & 0xF) == code(n0, k0 + 1));
  CHECK(((w >> 8) & 0xF) == code(n0, k0 + 8));
  CHECK(((w >> 24) & 0xF) == code(n0, k0 + 9));
  CHECK(((w >> 4) & 0xF) == code(n1, k0));
  CHECK(((w >> 20) & 0xF) == code(n1, k0 + 1));
  CHECK((w & 0xF) == code(n1, k0 + 8));
  CHECK(((w >> 16) & 0xF) == code(n1, k0 + 9));
}

TEST_CASE("scale repack places column 8*tile+g of each unit", "[layout]") {
  const std::int64_t n = 100, k = 80, stride = k / 16 + 1;
  std::mt19937 rng(std::random_device{}());
  const std::vector<std::uint8_t> scales = random_scales(rng, static_cast<std::size_t>(n * stride));
  const auto out = repack_scales_host(scales, stride, n, k);
  REQUIRE(static_cast<std::int64_t>(out.size()) == repacked_scale_bytes(n, k));
  const std::int64_t k_units = padded(k) / 16;
  for (std::int64_t nb = 0; nb < padded(n) / 64; ++nb)
    for (std::int64_t kb = 0; kb < k_units; ++kb)
      for (int g = 0; g < 8; ++g)
        for (int tile = 0; tile < 8; ++tile) {
          const std::int64_t col = nb * 64 + tile * 8 + g;
          // |scale| (zero and padding: 1.0, their weights are zero) as the f16 decode sees it.
          double expect = col < n && kb < k / 16 ? std::fabs(e4m3_value(scales[col * stride + kb]))
                                                 : 1.0;
          if (expect == 0) expect = 1.0;
          const std::uint8_t code = out[((nb * k_units + kb) * 8 + g) * 8 + tile];
          REQUIRE(kernel_scale_value(code, DType::f16) == std::ldexp(expect, 7));
        }
}

TEST_CASE("kernel scale decode is exact for all 254 finite E4M3 bytes in both dtypes",
          "[layout]") {
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
