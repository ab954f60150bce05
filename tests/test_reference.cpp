// The host reference itself is tested here, against hand-checked values and independent
// oracles, so that the GPU tests can trust it.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <set>

#include "tests/nvfp4_reference.hpp"

using namespace marlinrt;
using namespace marlinrt::test;

namespace {

std::uint32_t float_bits(float f) {
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

float float_from_bits(std::uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// A second, integer-only float -> bf16 rounding (ties to even) for non-NaN inputs.
std::uint16_t bf16_by_integer_rounding(float f) {
  const std::uint32_t bits = float_bits(f);
  const std::uint32_t lsb = (bits >> 16) & 1u;
  return static_cast<std::uint16_t>((bits + 0x7FFFu + lsb) >> 16);
}

bool is_nan_f16(std::uint16_t bits) { return (bits & 0x7C00) == 0x7C00 && (bits & 0x03FF) != 0; }
bool is_nan_bf16(std::uint16_t bits) { return (bits & 0x7F80) == 0x7F80 && (bits & 0x007F) != 0; }

}  // namespace

TEST_CASE("E2M1 codes decode to the eight magnitudes and their negatives", "[reference]") {
  const double magnitudes[8] = {0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0};
  for (int code = 0; code < 8; ++code) {
    CHECK(e2m1_value(static_cast<std::uint8_t>(code)) == magnitudes[code]);
    CHECK(e2m1_value(static_cast<std::uint8_t>(code | 8)) == -magnitudes[code]);
  }
  CHECK(std::signbit(e2m1_value(8)));  // code 8 is -0
  CHECK_FALSE(std::signbit(e2m1_value(0)));
}

TEST_CASE("E4M3 decoding matches hand-checked bytes", "[reference]") {
  CHECK(e4m3_value(0x00) == 0.0);
  CHECK_FALSE(std::signbit(e4m3_value(0x00)));
  CHECK(e4m3_value(0x01) == std::ldexp(1.0, -9));
  CHECK(e4m3_value(0x07) == 7 * std::ldexp(1.0, -9));
  CHECK(e4m3_value(0x08) == std::ldexp(1.0, -6));
  CHECK(e4m3_value(0x30) == 0.5);
  CHECK(e4m3_value(0x38) == 1.0);
  CHECK(e4m3_value(0x39) == 1.125);
  CHECK(e4m3_value(0x40) == 2.0);
  CHECK(e4m3_value(0x77) == 240.0);
  CHECK(e4m3_value(0x7D) == 416.0);
  CHECK(e4m3_value(0x7E) == 448.0);
  CHECK(e4m3_value(0x80) == 0.0);
  CHECK(std::signbit(e4m3_value(0x80)));
  CHECK(e4m3_value(0xB8) == -1.0);
  CHECK(e4m3_value(0xFE) == -448.0);
  CHECK(std::isnan(e4m3_value(0x7F)));
  CHECK(std::isnan(e4m3_value(0xFF)));

  int nan_count = 0;
  for (int b = 0; b < 256; ++b) {
    const auto byte = static_cast<std::uint8_t>(b);
    if (std::isnan(e4m3_value(byte))) {
      ++nan_count;
      CHECK(e4m3_is_nan(byte));
      continue;
    }
    CHECK_FALSE(e4m3_is_nan(byte));
    // Sign-magnitude: the negative byte mirrors the positive one.
    if (b < 0x80) CHECK(e4m3_value(static_cast<std::uint8_t>(b | 0x80)) == -e4m3_value(byte));
    // Positive bytes are strictly increasing.
    if (b > 0 && b < 0x7F) CHECK(e4m3_value(byte) > e4m3_value(static_cast<std::uint8_t>(b - 1)));
  }
  CHECK(nan_count == 2);
}

TEST_CASE("E4M3 encoding rounds to nearest even and saturates", "[reference]") {
  for (int b = 0; b < 256; ++b) {
    const auto byte = static_cast<std::uint8_t>(b);
    if (e4m3_is_nan(byte)) continue;
    INFO("byte " << b);
    CHECK(e4m3_from_double(e4m3_value(byte)) == byte);
  }
  CHECK(e4m3_from_double(1.0625) == 0x38);  // tie between 1.0 and 1.125 -> even mantissa
  CHECK(e4m3_from_double(1.1875) == 0x3A);  // tie between 1.125 and 1.25 -> even
  CHECK(e4m3_from_double(1.07) == 0x39);
  CHECK(e4m3_from_double(std::ldexp(1.0, -10)) == 0x00);      // half the smallest subnormal
  CHECK(e4m3_from_double(3 * std::ldexp(1.0, -10)) == 0x02);  // tie between 1 and 2 steps
  CHECK(e4m3_from_double(std::ldexp(1.0, -6) * (1.0 - 1.0 / 32)) == 0x08);  // subnormal -> normal
  CHECK(e4m3_from_double(460.0) == 0x7E);
  CHECK(e4m3_from_double(1e9) == 0x7E);
  CHECK(e4m3_from_double(-1e9) == 0xFE);
  CHECK(e4m3_from_double(-0.0) == 0x80);
  CHECK(e4m3_is_nan(e4m3_from_double(std::nan(""))));
}

TEST_CASE("f16 rounding: ties to even, subnormals, overflow", "[reference]") {
  CHECK(f16_bits_from_double(0.0) == 0x0000);
  CHECK(f16_bits_from_double(-0.0) == 0x8000);
  CHECK(f16_bits_from_double(1.0) == 0x3C00);
  CHECK(f16_bits_from_double(-2.0) == 0xC000);
  CHECK(f16_bits_from_double(65504.0) == 0x7BFF);
  CHECK(f16_bits_from_double(65519.99) == 0x7BFF);
  CHECK(f16_bits_from_double(65520.0) == 0x7C00);  // tie with 2^16 -> even -> inf
  CHECK(f16_bits_from_double(1e10) == 0x7C00);
  CHECK(f16_bits_from_double(-1e300) == 0xFC00);
  CHECK(f16_bits_from_double(std::numeric_limits<double>::infinity()) == 0x7C00);
  CHECK(is_nan_f16(f16_bits_from_double(std::nan(""))));
  CHECK(f16_bits_from_double(1.0 + std::ldexp(1.0, -11)) == 0x3C00);      // tie -> even
  CHECK(f16_bits_from_double(1.0 + 3 * std::ldexp(1.0, -11)) == 0x3C02);  // tie -> even
  CHECK(f16_bits_from_double(1.0 + std::ldexp(1.0, -11) + 1e-12) == 0x3C01);
  CHECK(f16_bits_from_double(std::ldexp(1.0, -14)) == 0x0400);     // smallest normal
  CHECK(f16_bits_from_double(std::ldexp(1023.0, -24)) == 0x03FF);  // largest subnormal
  CHECK(f16_bits_from_double(std::ldexp(1023.5, -24)) == 0x0400);  // rounds up into normals
  CHECK(f16_bits_from_double(std::ldexp(1.0, -24)) == 0x0001);
  CHECK(f16_bits_from_double(std::ldexp(1.0, -25)) == 0x0000);  // tie -> even (zero)
  CHECK(f16_bits_from_double(std::ldexp(1.0, -25) * 1.0001) == 0x0001);
  CHECK(f16_bits_from_double(std::ldexp(3.0, -25)) == 0x0002);  // tie between 1 and 2 -> 2
  CHECK(f16_bits_from_double(1e-30) == 0x0000);
  CHECK(f16_bits_from_double(-1e-30) == 0x8000);

  CHECK(f16_bits_to_double(0x3C00) == 1.0);
  CHECK(f16_bits_to_double(0x7BFF) == 65504.0);
  CHECK(f16_bits_to_double(0x0001) == std::ldexp(1.0, -24));
  CHECK(std::isinf(f16_bits_to_double(0x7C00)));
  CHECK(std::isnan(f16_bits_to_double(0x7E00)));
  CHECK(std::signbit(f16_bits_to_double(0x8000)));
}

TEST_CASE("bf16 rounding: ties to even, subnormals, overflow", "[reference]") {
  CHECK(bf16_bits_from_double(1.0) == 0x3F80);
  CHECK(bf16_bits_from_double(-1.0) == 0xBF80);
  CHECK(bf16_bits_from_double(1.0 + std::ldexp(1.0, -8)) == 0x3F80);      // tie -> even
  CHECK(bf16_bits_from_double(1.0 + 3 * std::ldexp(1.0, -8)) == 0x3F82);  // tie -> even
  CHECK(bf16_bits_from_double(1.0 + std::ldexp(1.0, -8) + 1e-9) == 0x3F81);
  const double max_finite = std::ldexp(2.0 - std::ldexp(1.0, -7), 127);
  CHECK(bf16_bits_from_double(max_finite) == 0x7F7F);
  CHECK(bf16_bits_from_double(std::ldexp(2.0 - std::ldexp(1.0, -8), 127)) == 0x7F80);  // tie->inf
  CHECK(bf16_bits_from_double(1e300) == 0x7F80);
  CHECK(bf16_bits_from_double(std::ldexp(1.0, -126)) == 0x0080);  // smallest normal
  CHECK(bf16_bits_from_double(std::ldexp(1.0, -133)) == 0x0001);  // smallest subnormal
  CHECK(bf16_bits_from_double(std::ldexp(1.0, -134)) == 0x0000);  // tie -> even (zero)
  CHECK(bf16_bits_from_double(std::ldexp(3.0, -134)) == 0x0002);
  CHECK(bf16_bits_from_double(-0.0) == 0x8000);
  CHECK(is_nan_bf16(bf16_bits_from_double(std::nan(""))));
  CHECK(bf16_bits_to_double(0x3F80) == 1.0);
  CHECK(bf16_bits_to_double(0x7F7F) == max_finite);
  CHECK(bf16_bits_to_double(0x0001) == std::ldexp(1.0, -133));
  CHECK(std::isinf(bf16_bits_to_double(0xFF80)));
  CHECK(std::isnan(bf16_bits_to_double(0x7FC0)));
}

TEST_CASE("every 16-bit pattern decodes and re-encodes to itself", "[reference]") {
  for (std::uint32_t b = 0; b < 0x10000; ++b) {
    const auto bits = static_cast<std::uint16_t>(b);
    if (!is_nan_f16(bits) && f16_bits_from_double(f16_bits_to_double(bits)) != bits) {
      FAIL("f16 bits " << b);
    }
    if (!is_nan_bf16(bits) && bf16_bits_from_double(bf16_bits_to_double(bits)) != bits) {
      FAIL("bf16 bits " << b);
    }
    if (!is_nan_bf16(bits)) {
      // bf16 is the upper half of a float.
      const float as_float = float_from_bits(static_cast<std::uint32_t>(bits) << 16);
      if (bf16_bits_to_double(bits) != static_cast<double>(as_float)) FAIL("bf16 value " << b);
    }
  }
}

TEST_CASE("16-bit rounding agrees with independent oracles on random inputs", "[reference]") {
  const std::uint64_t seed = fresh_test_seed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::uint32_t> any_bits;
  for (int i = 0; i < 200000; ++i) {
    // Random float bit patterns cover every exponent, subnormals and ties included.
    const float f = float_from_bits(any_bits(rng));
    if (std::isnan(f)) continue;
    if (bf16_bits_from_float(f) != bf16_by_integer_rounding(f)) {
      FAIL("bf16 of float bits " << float_bits(f));
    }
#ifdef __FLT16_MAX__
    // The compiler's own conversion (software, round to nearest even) as the f16 oracle.
    const _Float16 h = static_cast<_Float16>(f);
    std::uint16_t h_bits;
    std::memcpy(&h_bits, &h, sizeof h_bits);
    if (f16_bits_from_float(f) != h_bits) FAIL("f16 of float bits " << float_bits(f));
#endif
  }
#ifdef __FLT16_MAX__
  // Doubles at and beside f16 midpoints: a direct double -> f16 conversion must not round twice.
  std::uniform_int_distribution<int> finite_f16(0, 0x7BFE);
  for (int i = 0; i < 100000; ++i) {
    const auto low = static_cast<std::uint16_t>(finite_f16(rng));
    const double midpoint =
        (f16_bits_to_double(low) + f16_bits_to_double(static_cast<std::uint16_t>(low + 1))) / 2;
    const double nudge = std::ldexp(midpoint, -40) * (i % 3 - 1);  // below, at, above
    const double d = (i % 2 ? -1.0 : 1.0) * (midpoint + nudge);
    const _Float16 h = static_cast<_Float16>(d);
    std::uint16_t h_bits;
    std::memcpy(&h_bits, &h, sizeof h_bits);
    if (f16_bits_from_double(d) != h_bits) FAIL("f16 of double " << d);
    if (i % 3 == 1) {  // an exact tie goes to the even neighbour
      const std::uint16_t even = (low % 2 == 0) ? low : static_cast<std::uint16_t>(low + 1);
      if ((f16_bits_from_double(d) & 0x7FFF) != even) FAIL("f16 tie " << d);
    }
  }
#endif
}

TEST_CASE("E2M1 rounding follows the exporter's ties-to-even examples", "[reference]") {
  CHECK(e2m1_code_nearest(0.0) == 0);
  CHECK(e2m1_code_nearest(0.25) == 0);
  CHECK(e2m1_code_nearest(0.26) == 1);
  CHECK(e2m1_code_nearest(0.75) == 2);
  CHECK(e2m1_code_nearest(1.25) == 2);
  CHECK(e2m1_code_nearest(1.75) == 4);
  CHECK(e2m1_code_nearest(2.5) == 4);
  CHECK(e2m1_code_nearest(2.6) == 5);
  CHECK(e2m1_code_nearest(3.5) == 6);
  CHECK(e2m1_code_nearest(5.0) == 6);
  CHECK(e2m1_code_nearest(5.01) == 7);
  CHECK(e2m1_code_nearest(7.0) == 7);
  CHECK(e2m1_code_nearest(1e30) == 7);
  CHECK(e2m1_code_nearest(-0.75) == 10);
  CHECK(e2m1_code_nearest(-6.0) == 15);
  CHECK(e2m1_code_nearest(-0.1) == 8);  // keeps the sign: -0
  for (int code = 0; code < 16; ++code) {
    CHECK(e2m1_code_nearest(e2m1_value(static_cast<std::uint8_t>(code))) == code);
  }
}

TEST_CASE("the exporter quantizer round-trips exactly representable weights", "[reference]") {
  const std::uint64_t seed = fresh_test_seed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  const std::int64_t n = 48, k = 256;
  // ws2 with few mantissa bits keeps every step of the exporter's float arithmetic exact.
  const float ws2 = 1.25f * std::ldexp(1.0f, -10);
  HostNvfp4Weights original = random_full_range_weights(n, k, seed, ws2, false);
  std::uniform_int_distribution<int> position(0, 15);
  std::uniform_int_distribution<int> positive_scale(0x01, 0x7E);
  for (std::int64_t row = 0; row < n; ++row) {
    for (std::int64_t block = 0; block < k / 16; ++block) {
      // A nonzero scale and a +-6 in every block: the block's amax pins the scale exactly.
      original.scales[static_cast<std::size_t>(row * (k / 16) + block)] =
          static_cast<std::uint8_t>(positive_scale(rng));
      original.set_code(row, block * 16 + position(rng), (rng() & 1) ? 7 : 15);
    }
  }
  original.scales[5] = 0x7E;  // the global amax is 6 * 448 * ws2
  std::vector<float> dense(static_cast<std::size_t>(n * k));
  for (std::int64_t row = 0; row < n; ++row) {
    for (std::int64_t col = 0; col < k; ++col) {
      dense[static_cast<std::size_t>(row * k + col)] =
          static_cast<float>(original.dequantized(row, col));
    }
  }
  const HostNvfp4Weights again = quantize_like_exporter(dense.data(), n, k);
  CHECK(again.weight_scale_2 == ws2);
  CHECK(again.scales == original.scales);
  CHECK(again.packed == original.packed);  // -0 included: code 8 stays code 8
}

TEST_CASE("the exporter quantizer on normal data: scales in range, nearest codes", "[reference]") {
  const std::uint64_t seed = fresh_test_seed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  const std::int64_t n = 32, k = 512;
  const double stddev = std::ldexp(1.0, static_cast<int>(rng() % 20) - 10);
  INFO("stddev " << stddev);
  std::normal_distribution<float> normal(0.0f, static_cast<float>(stddev));
  std::vector<float> dense(static_cast<std::size_t>(n * k));
  for (float& v : dense) v = normal(rng);
  for (int i = 0; i < 16; ++i)
    dense[static_cast<std::size_t>(3 * k + 32 + i)] = 0.0f;  // zero block
  // A block of tiny values: its wanted scale is below 2^-9 and must clamp to it.
  for (int i = 0; i < 16; ++i) dense[static_cast<std::size_t>(5 * k + i)] = 1e-7f * stddev;

  const HostNvfp4Weights q = quantize_like_exporter(dense.data(), n, k);
  float amax = 0.0f;
  for (float v : dense) amax = std::max(amax, std::fabs(v));
  CHECK(q.weight_scale_2 == amax / 2688.0f);
  CHECK(q.scale_byte(3, 32) == 0x38);
  CHECK(q.scale_byte(5, 0) == 0x01);
  for (std::uint8_t byte : q.scales) {
    REQUIRE(byte <= 0x7E);  // finite, never negative
    REQUIRE(byte >= 0x01);  // clamped to >= 2^-9
  }
  double err_sq = 0.0, ref_sq = 0.0;
  for (std::int64_t row = 0; row < n; ++row) {
    for (std::int64_t col = 0; col < k; ++col) {
      const float value = dense[static_cast<std::size_t>(row * k + col)];
      const float combined =
          static_cast<float>(e4m3_value(q.scale_byte(row, col))) * q.weight_scale_2;
      const double scaled = value / combined;
      const double chosen = e2m1_value(q.code(row, col));
      double best = std::numeric_limits<double>::infinity();
      for (int c = 0; c < 16; ++c) {
        best = std::min(best, std::fabs(e2m1_value(static_cast<std::uint8_t>(c)) - scaled));
      }
      if (std::fabs(chosen - scaled) != best) FAIL("row " << row << " col " << col);
      const double deq = q.dequantized(row, col);
      err_sq += (deq - value) * (deq - value);
      ref_sq += static_cast<double>(value) * value;
    }
  }
  CHECK(std::sqrt(err_sq / ref_sq) < 0.2);  // NVFP4 on Gaussian data: ~0.1

  // The streaming generator follows the same recipe and is reproducible.
  const HostNvfp4Weights a = random_exporter_weights(64, 128, seed, 0.02);
  const HostNvfp4Weights b = random_exporter_weights(64, 128, seed, 0.02);
  CHECK(a.packed == b.packed);
  CHECK(a.scales == b.scales);
  CHECK(a.weight_scale_2 == b.weight_scale_2);
  bool has_max_scale_six = false;  // the global amax element: scale 448 and code +-6
  for (std::int64_t row = 0; row < a.n; ++row) {
    for (std::int64_t col = 0; col < a.k; ++col) {
      has_max_scale_six |= a.scale_byte(row, col) == 0x7E && (a.code(row, col) & 7) == 7;
    }
  }
  CHECK(has_max_scale_six);
}

TEST_CASE("the full-range generator covers every finite E4M3 byte", "[reference]") {
  const std::uint64_t seed = fresh_test_seed();
  INFO("seed " << seed);
  for (const bool negative : {false, true}) {
    const HostNvfp4Weights w = random_full_range_weights(256, 1024, seed, 0.5f, negative);
    CHECK(w.weight_scale_2 == 0.5f);
    std::set<std::uint8_t> seen(w.scales.begin(), w.scales.end());
    CHECK(seen.size() == (negative ? 254u : 127u));
    for (std::uint8_t byte : seen) {
      CHECK_FALSE(e4m3_is_nan(byte));
      if (!negative) CHECK((byte & 0x80) == 0);
    }
    std::set<std::uint8_t> codes;
    for (std::int64_t col = 0; col < w.k; ++col) codes.insert(w.code(7, col));
    CHECK(codes.size() == 16u);
  }
}

TEST_CASE("reference linear: hand-computed values and bias", "[reference]") {
  HostNvfp4Weights w;
  w.n = 2;
  w.k = 16;
  w.packed.assign(16, 0);
  w.scales = {0x38, 0x30};  // 1.0, 0.5
  w.weight_scale_2 = 0.25f;
  for (int col = 0; col < 16; ++col) {
    w.set_code(0, col, 2);                // 1.0
    w.set_code(1, col, col % 2 ? 9 : 7);  // -0.5, 6
  }
  for (const DType dtype : {DType::f16, DType::bf16}) {
    std::vector<std::uint16_t> x(32);
    for (int col = 0; col < 16; ++col) {
      x[col] = half_bits_from_double(dtype, 1.0);
      x[16 + col] = half_bits_from_double(dtype, col);
    }
    const HalfMatrixRef xr{x.data(), dtype, 2, 16, 16};
    const std::vector<double> ref = reference_linear(w, xr, {});
    REQUIRE(ref.size() == 4u);
    CHECK(ref[0] == 16 * 1.0 * 0.25);
    CHECK(ref[1] == (8 * 6 * 0.5 + 8 * -0.5 * 0.5) * 0.25);
    CHECK(ref[2] == 120 * 0.25);
    CHECK(ref[3] == (6 * 0.5 * 56 - 0.5 * 0.5 * 64) * 0.25);  // evens sum 56, odds 64
    const std::vector<std::uint16_t> bias = {half_bits_from_double(dtype, 1.0),
                                             half_bits_from_double(dtype, -2.0)};
    const std::vector<double> with_bias = reference_linear(w, xr, {1}, &bias);
    REQUIRE(with_bias.size() == 2u);
    CHECK(with_bias[0] == ref[2] + 1.0);
    CHECK(with_bias[1] == ref[3] - 2.0);
  }
}

TEST_CASE("reference linear: row subsets, thread counts, strides and a naive sum agree",
          "[reference]") {
  const std::uint64_t seed = fresh_test_seed();
  INFO("seed " << seed);
  const std::int64_t n = 37, k = 96, m = 11, stride = 104;
  const HostNvfp4Weights w = random_full_range_weights(n, k, seed, 0.75f, true);
  const std::vector<std::uint16_t> x =
      random_half_matrix(DType::bf16, m, k, stride, mix_seed(seed, 1), 1.0, 0x7FC0);
  const std::vector<std::uint16_t> bias = random_half_matrix(DType::bf16, 1, n, n, seed + 2);
  const HalfMatrixRef xr{x.data(), DType::bf16, m, k, stride};
  const std::vector<double> full = reference_linear(w, xr, {}, &bias, 1);
  const std::vector<double> threaded = reference_linear(w, xr, {}, &bias, 3);
  CHECK(full == threaded);
  const std::vector<double> subset = reference_linear(w, xr, {8, 3}, &bias, 2);
  for (std::int64_t col = 0; col < n; ++col) {
    CHECK(subset[static_cast<std::size_t>(col)] == full[static_cast<std::size_t>(8 * n + col)]);
    CHECK(subset[static_cast<std::size_t>(n + col)] == full[static_cast<std::size_t>(3 * n + col)]);
  }
  for (std::int64_t row = 0; row < m; ++row) {
    for (std::int64_t col = 0; col < n; ++col) {
      double sum = bf16_bits_to_double(bias[static_cast<std::size_t>(col)]);
      for (std::int64_t c = 0; c < k; ++c) {
        sum += bf16_bits_to_double(x[static_cast<std::size_t>(row * stride + c)]) *
               w.dequantized(col, c);
      }
      const double got = full[static_cast<std::size_t>(row * n + col)];
      REQUIRE(std::isfinite(got));  // the NaN gap of x's stride is never read
      CHECK(got == Approx(sum).epsilon(1e-12).margin(1e-12));
    }
  }
}

TEST_CASE("compare_with_reference measures errors and flags NaN and outliers", "[reference]") {
  const std::vector<double> ref = {1.0, 2.0, -3.0, 4.0};
  const std::vector<std::int64_t> rows = {7};
  std::vector<std::uint16_t> out;
  for (double r : ref) out.push_back(bf16_bits_from_double(r));
  ReferenceComparison ok = compare_with_reference(DType::bf16, out, ref, rows, 4, 1e-2, 1.0 / 256);
  CHECK(ok.relative_error == 0.0);
  CHECK(ok.bound_violations == 0);
  CHECK(ok.max_abs_ref == 4.0);

  out[1] = bf16_bits_from_double(2.5);
  ReferenceComparison off = compare_with_reference(DType::bf16, out, ref, rows, 4, 1e-2, 1.0 / 256);
  CHECK(off.bound_violations == 1);
  CHECK(off.max_abs_error == 0.5);
  CHECK(off.relative_error == Approx(0.5 / std::sqrt(30.0)));
  CHECK_THAT(off.first_violation, Catch::Contains("row 7 col 1"));

  out[2] = 0x7FC0;  // NaN
  ReferenceComparison nan = compare_with_reference(DType::bf16, out, ref, rows, 4, 1e-2, 1.0 / 256);
  CHECK(nan.non_finite_count == 1);
  CHECK(nan.bound_violations == 2);
  CHECK(std::isinf(nan.relative_error));
}

TEST_CASE("sample_rows keeps small M whole and samples large M with both ends", "[reference]") {
  const std::uint64_t seed = fresh_test_seed();
  INFO("seed " << seed);
  CHECK(sample_rows(5, 64, seed) == std::vector<std::int64_t>{0, 1, 2, 3, 4});
  const std::vector<std::int64_t> rows = sample_rows(16384, 64, seed);
  REQUIRE(rows.size() == 64u);
  CHECK(rows.front() == 0);
  CHECK(rows.back() == 16383);
  CHECK(std::set<std::int64_t>(rows.begin(), rows.end()).size() == 64u);
}
