// An independent host model of NVFP4 linear layers, written from the checkpoint semantics
// (NVFP4.md) and sharing no code with the library: number formats, 16-bit rounding, the
// exporter's quantizer, random layer generators and an FP64 reference of y = x * W^T + bias.
// The GPU tests compare the library against it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "marlinrt/dtype.hpp"

namespace marlinrt::test {

// ---- number formats ----

// E2M1 code (0..15, bit 3 = sign) -> value: 0, 0.5, 1, 1.5, 2, 3, 4, 6 and negatives.
double e2m1_value(std::uint8_t code);
// float8_e4m3fn byte -> value (NaN for 0x7F and 0xFF; subnormals down to 2^-9).
double e4m3_value(std::uint8_t byte);
bool e4m3_is_nan(std::uint8_t byte);
// Nearest E4M3 byte, ties to even mantissa, saturating at +-448; NaN -> 0x7F.
std::uint8_t e4m3_from_double(double value);
// Nearest E2M1 magnitude to |value|, ties to even code, saturating at 6; the sign of `value`
// (including -0.0) goes into bit 3.
std::uint8_t e2m1_code_nearest(double value);

// Round-to-nearest-even conversions to the 16-bit activation formats (subnormals kept,
// overflow -> inf, NaN -> quiet NaN) and back. float -> double is exact, so the float overloads
// round exactly like a direct float -> 16-bit conversion.
std::uint16_t f16_bits_from_double(double value);
std::uint16_t f16_bits_from_float(float value);
double f16_bits_to_double(std::uint16_t bits);
std::uint16_t bf16_bits_from_double(double value);
std::uint16_t bf16_bits_from_float(float value);
double bf16_bits_to_double(std::uint16_t bits);

// The same, picked by activation dtype (f16 or bf16 only).
std::uint16_t half_bits_from_double(DType dtype, double value);
double half_bits_to_double(DType dtype, std::uint16_t bits);
// The value `value` becomes once stored in `dtype`.
double round_to_half(DType dtype, double value);

// ---- quantized layers ----

// One NVFP4 layer with logical weight [n, k] in ModelOpt's checkpoint layout.
struct HostNvfp4Weights {
  std::int64_t n = 0;
  std::int64_t k = 0;
  std::vector<std::uint8_t> packed;  // [n, k/2]: element 2i in the low nibble
  std::vector<std::uint8_t> scales;  // [n, k/16]: float8_e4m3fn bytes
  float weight_scale_2 = 1.0f;

  std::uint8_t code(std::int64_t row, std::int64_t col) const;
  std::uint8_t scale_byte(std::int64_t row, std::int64_t col) const {
    return scales[static_cast<std::size_t>(row * (k / 16) + col / 16)];
  }
  void set_code(std::int64_t row, std::int64_t col, std::uint8_t code);
  // e2m1 * e4m3 * weight_scale_2, exact in double.
  double dequantized(std::int64_t row, std::int64_t col) const;
};

// Quantizes a row-major [n, k] float matrix exactly as the ModelOpt exporter does:
// weight_scale_2 = amax/(6*448); block scale = amax(block)/(6*ws2) clamped to [2^-9, 448] and
// rounded to E4M3 (all-zero block: scale 1); values /(scale*ws2) -> nearest E2M1, ties to even.
// k must be a multiple of 16. Multithreaded over rows.
HostNvfp4Weights quantize_like_exporter(const float* weights, std::int64_t n, std::int64_t k);

// The exporter recipe applied to N(0, stddev^2) data generated row by row from `seed`
// (reproducible, never materialized as floats: cheap for the largest checkpoint shapes).
HostNvfp4Weights random_exporter_weights(std::int64_t n, std::int64_t k, std::uint64_t seed,
                                         double stddev = 1.0);

// Uniformly random E2M1 codes and block scales drawn uniformly over all finite E4M3 bytes
// (zero and subnormals included; with `negative_scales` the sign bit too), to reach scale
// values real exporters rarely produce.
HostNvfp4Weights random_full_range_weights(std::int64_t n, std::int64_t k, std::uint64_t seed,
                                           float weight_scale_2, bool negative_scales);

// Rows x cols 16-bit values (row stride `stride` >= cols; the gap is filled with `gap_bits`),
// N(0, stddev^2) rounded to `dtype`.
std::vector<std::uint16_t> random_half_matrix(DType dtype, std::int64_t rows, std::int64_t cols,
                                              std::int64_t stride, std::uint64_t seed,
                                              double stddev = 1.0, std::uint16_t gap_bits = 0);

// ---- the FP64 reference ----

// x: `m` rows of 16-bit values in `dtype`, row stride `x_stride` elements.
struct HalfMatrixRef {
  const std::uint16_t* data = nullptr;
  DType dtype = DType::bf16;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t stride = 0;
};

// ref[i, n] = sum_k x[rows[i], k] * w(n, k) (+ bias[n]) for every listed row of x (all rows
// when `rows` is empty), as a row-major [rows, n] matrix. `bias` (optional) holds n values in
// x's dtype. Multithreaded over columns (`threads` = 0: all hardware threads); the result does
// not depend on the thread count.
std::vector<double> reference_linear(const HostNvfp4Weights& w, const HalfMatrixRef& x,
                                     const std::vector<std::int64_t>& rows,
                                     const std::vector<std::uint16_t>* bias = nullptr,
                                     unsigned threads = 0);

// All of 0..m-1 when m <= max_rows; otherwise max_rows distinct sorted rows that include the
// first and the last, drawn from `seed`.
std::vector<std::int64_t> sample_rows(std::int64_t m, std::int64_t max_rows, std::uint64_t seed);

// ---- comparing an output with the reference ----

struct ReferenceComparison {
  double relative_error = 0.0;        // ||out - ref|| / ||ref|| (Frobenius, 0 when ref is all zero)
  double max_abs_error = 0.0;         // max |out - ref|
  double max_abs_ref = 0.0;           // max |ref|
  std::int64_t non_finite_count = 0;  // NaN or inf outputs
  std::int64_t bound_violations = 0;  // elements above abs_tol*max|ref| + rel_tol*|ref|
  std::string first_violation;        // "row r col c: out .. ref .." for the first one, or empty
  std::string summary() const;
};

// `out` holds the 16-bit outputs of the listed rows, row-major [rows, n] (contiguous);
// `ref` the matching reference values. Element bound: |out-ref| <= abs_tol*max|ref| +
// rel_tol*|ref|.
ReferenceComparison compare_with_reference(DType dtype, const std::vector<std::uint16_t>& out,
                                           const std::vector<double>& ref,
                                           const std::vector<std::int64_t>& rows, std::int64_t n,
                                           double abs_tol, double rel_tol);

// ---- randomness ----

// A fresh seed per run (random_device mixed with the clock), or MARLINRT_TEST_SEED when set, so
// a failure printed with its seed can be replayed.
std::uint64_t fresh_test_seed();
// A well-mixed 64-bit value from (seed, stream): independent streams of one seed.
std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t stream);

// Runs body(begin, end) over [0, count) split into contiguous chunks on up to `threads` threads
// (0: hardware concurrency). Exceptions from workers are rethrown.
void parallel_for(std::int64_t count, unsigned threads,
                  const std::function<void(std::int64_t, std::int64_t)>& body);

}  // namespace marlinrt::test
