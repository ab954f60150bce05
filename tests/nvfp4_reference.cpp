#include "tests/nvfp4_reference.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <limits>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace marlinrt::test {
namespace {

constexpr std::array<double, 8> kE2m1Magnitudes = {0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0};

// Magnitude bits of the value nearest to `magnitude` (finite, >= 0), ties to even, in a binary
// format with `mantissa_bits` stored mantissa bits and exponent bias `bias`, subnormals
// included. Values past the largest exponent give bits at or above the all-ones exponent field;
// callers turn those into inf or saturate.
std::uint32_t round_magnitude(double magnitude, int mantissa_bits, int bias) {
  if (magnitude == 0.0) return 0;
  int frexp_exponent = 0;
  std::frexp(magnitude, &frexp_exponent);   // magnitude = f * 2^e, f in [0.5, 1)
  const int exponent = frexp_exponent - 1;  // magnitude in [2^exponent, 2^(exponent+1))
  const int min_normal_exponent = 1 - bias;
  if (exponent > bias + 1) return 0xFFFFFFFFu;  // far past the largest finite value
  // The spacing of representable values around `magnitude`; scaling by it is exact.
  const int quantum_exponent = std::max(exponent, min_normal_exponent) - mantissa_bits;
  const double steps = std::nearbyint(std::ldexp(magnitude, -quantum_exponent));  // RNE
  const auto whole_steps = static_cast<std::uint32_t>(steps);
  if (exponent < min_normal_exponent) return whole_steps;  // subnormal (may round up to normal)
  // A round-up to 2^(exponent+1) carries into the exponent field by itself.
  return (static_cast<std::uint32_t>(exponent + bias) << mantissa_bits) + whole_steps -
         (1u << mantissa_bits);
}

double decode_magnitude(std::uint32_t bits, int mantissa_bits, int bias) {
  const std::uint32_t exponent_field = bits >> mantissa_bits;
  const std::uint32_t mantissa = bits & ((1u << mantissa_bits) - 1);
  if (exponent_field == 0)
    return std::ldexp(static_cast<double>(mantissa), 1 - bias - mantissa_bits);
  return std::ldexp(1.0 + std::ldexp(static_cast<double>(mantissa), -mantissa_bits),
                    static_cast<int>(exponent_field) - bias);
}

// IEEE-style 16-bit formats: 5/10 (f16) and 8/7 (bf16).
std::uint16_t binary16_from_double(double value, int mantissa_bits, int bias) {
  const std::uint16_t sign = std::signbit(value) ? 0x8000 : 0;
  const std::uint32_t inf_bits = ((1u << (15 - mantissa_bits)) - 1) << mantissa_bits;
  if (std::isnan(value)) return static_cast<std::uint16_t>(inf_bits | (1u << (mantissa_bits - 1)));
  if (std::isinf(value)) return static_cast<std::uint16_t>(sign | inf_bits);
  const std::uint32_t bits = round_magnitude(std::fabs(value), mantissa_bits, bias);
  return static_cast<std::uint16_t>(sign | std::min(bits, inf_bits));
}

double binary16_to_double(std::uint16_t bits, int mantissa_bits, int bias) {
  const double sign = (bits & 0x8000) ? -1.0 : 1.0;
  const std::uint32_t magnitude = bits & 0x7FFFu;
  const std::uint32_t inf_bits = ((1u << (15 - mantissa_bits)) - 1) << mantissa_bits;
  if (magnitude > inf_bits) return std::numeric_limits<double>::quiet_NaN();
  if (magnitude == inf_bits) return sign * std::numeric_limits<double>::infinity();
  return sign * decode_magnitude(magnitude, mantissa_bits, bias);
}

const std::array<double, 256>& e4m3_table() {
  static const std::array<double, 256> table = [] {
    std::array<double, 256> t{};
    for (int b = 0; b < 256; ++b) {
      const auto byte = static_cast<std::uint8_t>(b);
      if ((byte & 0x7F) == 0x7F) {
        t[b] = std::numeric_limits<double>::quiet_NaN();
      } else {
        const double magnitude = decode_magnitude(byte & 0x7Fu, 3, 7);
        t[b] = (byte & 0x80) ? -magnitude : magnitude;
      }
    }
    return t;
  }();
  return table;
}

// Quantizes one row with the exporter's float32 arithmetic.
void quantize_row_like_exporter(const float* row, std::int64_t k, float weight_scale_2,
                                std::uint8_t* packed_row, std::uint8_t* scale_row) {
  constexpr float kMinScale = 0.001953125f;  // 2^-9, the smallest E4M3 subnormal
  constexpr float kMaxScale = 448.0f;
  for (std::int64_t block = 0; block < k / 16; ++block) {
    const float* values = row + block * 16;
    float block_amax = 0.0f;
    for (int i = 0; i < 16; ++i) block_amax = std::max(block_amax, std::fabs(values[i]));
    std::uint8_t scale_byte = 0x38;  // 1.0 for an all-zero block
    if (block_amax > 0.0f) {
      const float wanted = block_amax / (6.0f * weight_scale_2);
      scale_byte = e4m3_from_double(std::clamp(wanted, kMinScale, kMaxScale));
    }
    scale_row[block] = scale_byte;
    const float combined = static_cast<float>(e4m3_table()[scale_byte]) * weight_scale_2;
    for (int i = 0; i < 16; i += 2) {
      const std::uint8_t low = e2m1_code_nearest(values[i] / combined);
      const std::uint8_t high = e2m1_code_nearest(values[i + 1] / combined);
      packed_row[block * 8 + i / 2] = static_cast<std::uint8_t>(low | (high << 4));
    }
  }
}

void check_layer_shape(std::int64_t n, std::int64_t k) {
  if (n <= 0 || k <= 0 || k % 16 != 0) {
    std::ostringstream message;
    message << "NVFP4 test layer [" << n << ", " << k
            << "]: n and k must be positive and k a multiple of 16";
    throw std::invalid_argument(message.str());
  }
}

HostNvfp4Weights empty_layer(std::int64_t n, std::int64_t k) {
  check_layer_shape(n, k);
  HostNvfp4Weights w;
  w.n = n;
  w.k = k;
  w.packed.assign(static_cast<std::size_t>(n * k / 2), 0);
  w.scales.assign(static_cast<std::size_t>(n * k / 16), 0);
  return w;
}

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

// ---- number formats ----

double e2m1_value(std::uint8_t code) {
  const double magnitude = kE2m1Magnitudes[code & 7];
  return (code & 8) ? -magnitude : magnitude;
}

double e4m3_value(std::uint8_t byte) { return e4m3_table()[byte]; }

bool e4m3_is_nan(std::uint8_t byte) { return (byte & 0x7F) == 0x7F; }

std::uint8_t e4m3_from_double(double value) {
  if (std::isnan(value)) return 0x7F;
  const std::uint8_t sign = std::signbit(value) ? 0x80 : 0;
  if (std::isinf(value)) return sign | 0x7E;
  const std::uint32_t bits = round_magnitude(std::fabs(value), 3, 7);
  return static_cast<std::uint8_t>(sign | std::min<std::uint32_t>(bits, 0x7E));
}

std::uint8_t e2m1_code_nearest(double value) {
  const std::uint8_t sign = std::signbit(value) ? 8 : 0;
  const double a = std::fabs(value);
  // Midpoints between neighbouring magnitudes; a tie goes to the even code.
  std::uint8_t code;
  if (a <= 0.25)
    code = 0;
  else if (a < 0.75)
    code = 1;
  else if (a <= 1.25)
    code = 2;
  else if (a < 1.75)
    code = 3;
  else if (a <= 2.5)
    code = 4;
  else if (a < 3.5)
    code = 5;
  else if (a <= 5.0)
    code = 6;
  else
    code = 7;  // saturates (NaN included)
  return sign | code;
}

std::uint16_t f16_bits_from_double(double value) { return binary16_from_double(value, 10, 15); }
std::uint16_t f16_bits_from_float(float value) {
  return f16_bits_from_double(static_cast<double>(value));
}
double f16_bits_to_double(std::uint16_t bits) { return binary16_to_double(bits, 10, 15); }
std::uint16_t bf16_bits_from_double(double value) { return binary16_from_double(value, 7, 127); }
std::uint16_t bf16_bits_from_float(float value) {
  return bf16_bits_from_double(static_cast<double>(value));
}
double bf16_bits_to_double(std::uint16_t bits) { return binary16_to_double(bits, 7, 127); }

std::uint16_t half_bits_from_double(DType dtype, double value) {
  switch (dtype) {
    case DType::f16:
      return f16_bits_from_double(value);
    case DType::bf16:
      return bf16_bits_from_double(value);
    default:
      break;
  }
  throw std::invalid_argument("activation dtype must be f16 or bf16");
}

double half_bits_to_double(DType dtype, std::uint16_t bits) {
  switch (dtype) {
    case DType::f16:
      return f16_bits_to_double(bits);
    case DType::bf16:
      return bf16_bits_to_double(bits);
    default:
      break;
  }
  throw std::invalid_argument("activation dtype must be f16 or bf16");
}

double round_to_half(DType dtype, double value) {
  return half_bits_to_double(dtype, half_bits_from_double(dtype, value));
}

// ---- quantized layers ----

std::uint8_t HostNvfp4Weights::code(std::int64_t row, std::int64_t col) const {
  const std::uint8_t byte = packed[static_cast<std::size_t>(row * (k / 2) + col / 2)];
  return (col % 2 == 0) ? (byte & 0x0F) : (byte >> 4);
}

void HostNvfp4Weights::set_code(std::int64_t row, std::int64_t col, std::uint8_t value) {
  std::uint8_t& byte = packed[static_cast<std::size_t>(row * (k / 2) + col / 2)];
  byte = (col % 2 == 0) ? static_cast<std::uint8_t>((byte & 0xF0) | (value & 0x0F))
                        : static_cast<std::uint8_t>((byte & 0x0F) | ((value & 0x0F) << 4));
}

double HostNvfp4Weights::dequantized(std::int64_t row, std::int64_t col) const {
  return e2m1_value(code(row, col)) * e4m3_value(scale_byte(row, col)) *
         static_cast<double>(weight_scale_2);
}

HostNvfp4Weights quantize_like_exporter(const float* weights, std::int64_t n, std::int64_t k) {
  HostNvfp4Weights w = empty_layer(n, k);
  float amax = 0.0f;
  for (std::int64_t i = 0; i < n * k; ++i) amax = std::max(amax, std::fabs(weights[i]));
  w.weight_scale_2 = amax > 0.0f ? amax / (6.0f * 448.0f) : 1.0f;
  parallel_for(n, 0, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t row = begin; row < end; ++row) {
      quantize_row_like_exporter(weights + row * k, k, w.weight_scale_2,
                                 w.packed.data() + row * (k / 2), w.scales.data() + row * (k / 16));
    }
  });
  return w;
}

HostNvfp4Weights random_exporter_weights(std::int64_t n, std::int64_t k, std::uint64_t seed,
                                         double stddev) {
  HostNvfp4Weights w = empty_layer(n, k);
  const auto generate_row = [&](std::int64_t row, std::vector<float>& values) {
    std::mt19937_64 rng(mix_seed(seed, static_cast<std::uint64_t>(row)));
    std::normal_distribution<float> normal(0.0f, static_cast<float>(stddev));
    values.resize(static_cast<std::size_t>(k));
    for (float& v : values) v = normal(rng);
  };
  // Pass 1: the global amax (per-chunk maxima, combined in a fixed order).
  const unsigned chunks = std::max(1u, std::thread::hardware_concurrency());
  std::vector<float> chunk_amax(chunks, 0.0f);
  const std::int64_t rows_per_chunk = (n + chunks - 1) / chunks;
  parallel_for(chunks, chunks, [&](std::int64_t begin, std::int64_t end) {
    std::vector<float> values;
    for (std::int64_t chunk = begin; chunk < end; ++chunk) {
      float amax = 0.0f;
      for (std::int64_t row = chunk * rows_per_chunk;
           row < std::min(n, (chunk + 1) * rows_per_chunk); ++row) {
        generate_row(row, values);
        for (float v : values) amax = std::max(amax, std::fabs(v));
      }
      chunk_amax[static_cast<std::size_t>(chunk)] = amax;
    }
  });
  const float amax = *std::max_element(chunk_amax.begin(), chunk_amax.end());
  w.weight_scale_2 = amax > 0.0f ? amax / (6.0f * 448.0f) : 1.0f;
  // Pass 2: regenerate each row and quantize it.
  parallel_for(n, 0, [&](std::int64_t begin, std::int64_t end) {
    std::vector<float> values;
    for (std::int64_t row = begin; row < end; ++row) {
      generate_row(row, values);
      quantize_row_like_exporter(values.data(), k, w.weight_scale_2,
                                 w.packed.data() + row * (k / 2), w.scales.data() + row * (k / 16));
    }
  });
  return w;
}

HostNvfp4Weights random_full_range_weights(std::int64_t n, std::int64_t k, std::uint64_t seed,
                                           float weight_scale_2, bool negative_scales) {
  HostNvfp4Weights w = empty_layer(n, k);
  w.weight_scale_2 = weight_scale_2;
  std::vector<std::uint8_t> allowed_scales;
  for (int b = 0; b < 256; ++b) {
    const auto byte = static_cast<std::uint8_t>(b);
    if (e4m3_is_nan(byte)) continue;
    if ((byte & 0x80) && !negative_scales) continue;
    allowed_scales.push_back(byte);
  }
  parallel_for(n, 0, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t row = begin; row < end; ++row) {
      std::mt19937_64 rng(mix_seed(seed, static_cast<std::uint64_t>(row)));
      std::uniform_int_distribution<int> byte_dist(0, 255);
      std::uniform_int_distribution<std::size_t> scale_dist(0, allowed_scales.size() - 1);
      for (std::int64_t i = 0; i < k / 2; ++i) {
        w.packed[static_cast<std::size_t>(row * (k / 2) + i)] =
            static_cast<std::uint8_t>(byte_dist(rng));
      }
      for (std::int64_t i = 0; i < k / 16; ++i) {
        w.scales[static_cast<std::size_t>(row * (k / 16) + i)] = allowed_scales[scale_dist(rng)];
      }
    }
  });
  return w;
}

std::vector<std::uint16_t> random_half_matrix(DType dtype, std::int64_t rows, std::int64_t cols,
                                              std::int64_t stride, std::uint64_t seed,
                                              double stddev, std::uint16_t gap_bits) {
  if (rows < 0 || cols < 0 || stride < cols) {
    throw std::invalid_argument("random_half_matrix: need rows, cols >= 0 and stride >= cols");
  }
  half_bits_from_double(dtype, 0.0);  // rejects non-16-bit dtypes up front
  std::vector<std::uint16_t> out(static_cast<std::size_t>(rows * stride), gap_bits);
  parallel_for(rows, 0, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) {
      std::mt19937_64 rng(mix_seed(seed, static_cast<std::uint64_t>(r)));
      std::normal_distribution<double> normal(0.0, stddev);
      for (std::int64_t c = 0; c < cols; ++c) {
        out[static_cast<std::size_t>(r * stride + c)] = half_bits_from_double(dtype, normal(rng));
      }
    }
  });
  return out;
}

// ---- the FP64 reference ----

std::vector<double> reference_linear(const HostNvfp4Weights& w, const HalfMatrixRef& x,
                                     const std::vector<std::int64_t>& rows,
                                     const std::vector<std::uint16_t>* bias, unsigned threads) {
  if (x.cols != w.k) throw std::invalid_argument("reference_linear: x cols != weight k");
  if (x.stride < x.cols) throw std::invalid_argument("reference_linear: x stride < cols");
  if (bias && static_cast<std::int64_t>(bias->size()) != w.n) {
    throw std::invalid_argument("reference_linear: bias size != n");
  }
  std::vector<std::int64_t> row_list = rows;
  if (row_list.empty()) {
    for (std::int64_t r = 0; r < x.rows; ++r) row_list.push_back(r);
  }
  const std::int64_t k = w.k;
  const auto row_count = static_cast<std::int64_t>(row_list.size());
  // x as doubles, the selected rows only, contiguous.
  std::vector<double> xd(static_cast<std::size_t>(row_count * k));
  for (std::int64_t i = 0; i < row_count; ++i) {
    const std::int64_t r = row_list[static_cast<std::size_t>(i)];
    if (r < 0 || r >= x.rows) throw std::invalid_argument("reference_linear: row out of range");
    for (std::int64_t c = 0; c < k; ++c) {
      xd[static_cast<std::size_t>(i * k + c)] =
          half_bits_to_double(x.dtype, x.data[r * x.stride + c]);
    }
  }
  std::array<double, 16> e2m1{};
  for (int c = 0; c < 16; ++c) e2m1[c] = e2m1_value(static_cast<std::uint8_t>(c));
  const std::array<double, 256>& e4m3 = e4m3_table();
  const double ws2 = static_cast<double>(w.weight_scale_2);

  std::vector<double> out(static_cast<std::size_t>(row_count * w.n));
  parallel_for(w.n, threads, [&](std::int64_t begin, std::int64_t end) {
    std::vector<double> weight_row(static_cast<std::size_t>(k));
    for (std::int64_t n = begin; n < end; ++n) {
      // e2m1 * e4m3 is exact in double; ws2 is applied once per output.
      const std::uint8_t* packed = w.packed.data() + n * (k / 2);
      const std::uint8_t* scales = w.scales.data() + n * (k / 16);
      for (std::int64_t block = 0; block < k / 16; ++block) {
        const double scale = e4m3[scales[block]];
        for (int i = 0; i < 8; ++i) {
          const std::uint8_t byte = packed[block * 8 + i];
          weight_row[static_cast<std::size_t>(block * 16 + 2 * i)] = e2m1[byte & 0x0F] * scale;
          weight_row[static_cast<std::size_t>(block * 16 + 2 * i + 1)] = e2m1[byte >> 4] * scale;
        }
      }
      const double* wr = weight_row.data();
      const double b =
          bias ? half_bits_to_double(x.dtype, (*bias)[static_cast<std::size_t>(n)]) : 0.0;
      std::int64_t i = 0;
      // Four rows at a time: each weight is loaded once for four independent sums.
      for (; i + 4 <= row_count; i += 4) {
        const double* x0 = xd.data() + i * k;
        const double* x1 = x0 + k;
        const double* x2 = x1 + k;
        const double* x3 = x2 + k;
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (std::int64_t c = 0; c < k; ++c) {
          const double wc = wr[c];
          s0 += x0[c] * wc;
          s1 += x1[c] * wc;
          s2 += x2[c] * wc;
          s3 += x3[c] * wc;
        }
        out[static_cast<std::size_t>(i * w.n + n)] = s0 * ws2 + b;
        out[static_cast<std::size_t>((i + 1) * w.n + n)] = s1 * ws2 + b;
        out[static_cast<std::size_t>((i + 2) * w.n + n)] = s2 * ws2 + b;
        out[static_cast<std::size_t>((i + 3) * w.n + n)] = s3 * ws2 + b;
      }
      for (; i < row_count; ++i) {
        const double* x0 = xd.data() + i * k;
        double s = 0;
        for (std::int64_t c = 0; c < k; ++c) s += x0[c] * wr[c];
        out[static_cast<std::size_t>(i * w.n + n)] = s * ws2 + b;
      }
    }
  });
  return out;
}

std::vector<std::int64_t> sample_rows(std::int64_t m, std::int64_t max_rows, std::uint64_t seed) {
  std::vector<std::int64_t> rows;
  if (m <= max_rows) {
    for (std::int64_t r = 0; r < m; ++r) rows.push_back(r);
    return rows;
  }
  std::set<std::int64_t> chosen = {0, m - 1};
  std::mt19937_64 rng(mix_seed(seed, 0x5A3B1E));
  std::uniform_int_distribution<std::int64_t> dist(0, m - 1);
  while (static_cast<std::int64_t>(chosen.size()) < max_rows) chosen.insert(dist(rng));
  return {chosen.begin(), chosen.end()};
}

// ---- comparing an output with the reference ----

std::string ReferenceComparison::summary() const {
  std::ostringstream s;
  s << "rel_err=" << relative_error << " max_abs_err=" << max_abs_error
    << " max|ref|=" << max_abs_ref << " non_finite=" << non_finite_count
    << " bound_violations=" << bound_violations;
  if (!first_violation.empty()) s << " first: " << first_violation;
  return s.str();
}

ReferenceComparison compare_with_reference(DType dtype, const std::vector<std::uint16_t>& out,
                                           const std::vector<double>& ref,
                                           const std::vector<std::int64_t>& rows, std::int64_t n,
                                           double abs_tol, double rel_tol) {
  if (out.size() != ref.size() ||
      static_cast<std::int64_t>(ref.size()) != static_cast<std::int64_t>(rows.size()) * n) {
    throw std::invalid_argument("compare_with_reference: out/ref/rows sizes disagree");
  }
  ReferenceComparison c;
  double diff_sq = 0.0;
  double ref_sq = 0.0;
  for (double r : ref) c.max_abs_ref = std::max(c.max_abs_ref, std::fabs(r));
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double o = half_bits_to_double(dtype, out[i]);
    const double r = ref[i];
    ref_sq += r * r;
    const bool finite = std::isfinite(o);
    const double diff = finite ? std::fabs(o - r) : std::numeric_limits<double>::infinity();
    if (!finite)
      ++c.non_finite_count;
    else
      diff_sq += diff * diff;
    c.max_abs_error = std::max(c.max_abs_error, diff);
    if (!(diff <= abs_tol * c.max_abs_ref + rel_tol * std::fabs(r))) {
      if (c.bound_violations++ == 0) {
        std::ostringstream s;
        s << "row " << rows[i / static_cast<std::size_t>(n)] << " col "
          << static_cast<std::int64_t>(i % static_cast<std::size_t>(n)) << ": out " << o << " ref "
          << r;
        c.first_violation = s.str();
      }
    }
  }
  c.relative_error = ref_sq > 0.0 ? std::sqrt(diff_sq / ref_sq) : std::sqrt(diff_sq);
  if (c.non_finite_count > 0) c.relative_error = std::numeric_limits<double>::infinity();
  return c;
}

// ---- randomness ----

std::uint64_t fresh_test_seed() {
  if (const char* text = std::getenv("MARLINRT_TEST_SEED"); text && *text) {
    return std::strtoull(text, nullptr, 0);
  }
  std::random_device device;
  const auto now = static_cast<std::uint64_t>(
      std::chrono::high_resolution_clock::now().time_since_epoch().count());
  return splitmix64((static_cast<std::uint64_t>(device()) << 32) ^ device() ^ now);
}

std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t stream) {
  return splitmix64(seed ^ splitmix64(stream + 0xD1B54A32D192ED03ull));
}

void parallel_for(std::int64_t count, unsigned threads,
                  const std::function<void(std::int64_t, std::int64_t)>& body) {
  if (count <= 0) return;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  const std::int64_t workers = std::min<std::int64_t>(threads, count);
  const std::int64_t chunk = (count + workers - 1) / workers;
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(workers));
  const auto run = [&](std::int64_t worker) {
    try {
      const std::int64_t begin = worker * chunk;
      const std::int64_t end = std::min(count, begin + chunk);
      if (begin < end) body(begin, end);
    } catch (...) {
      errors[static_cast<std::size_t>(worker)] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  for (std::int64_t worker = 1; worker < workers; ++worker) pool.emplace_back(run, worker);
  run(0);
  for (std::thread& t : pool) t.join();
  for (const std::exception_ptr& error : errors) {
    if (error) std::rethrow_exception(error);
  }
}

}  // namespace marlinrt::test
