// Dense NVFP4 linear on the GPU against the independent FP64 reference (tests/nvfp4_reference):
// M sweeps, every dense checkpoint shape, padded shapes, the full E4M3 scale range, fp16
// overflow of unscaled partial sums, bias, row strides, determinism, and exactness of every
// (E2M1 code, E4M3 scale) product.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "marlinrt/error.hpp"
#include "marlinrt/linear.hpp"
#include "runtime/dense_dispatch.hpp"
#include "runtime/nvfp4_layout.hpp"
#include "tests/cuda_test_support.hpp"
#include "tests/gpu_guard.hpp"
#include "tests/nvfp4_reference.hpp"

using namespace marlinrt;
using namespace marlinrt::test;

namespace {

constexpr std::uint16_t kPoisonBits = 0xFFFF;  // NaN in both f16 and bf16

struct Tolerance {
  double relative;          // ||out - ref|| / ||ref||
  double element_relative;  // per element: |out-ref| <= element_absolute*max|ref| + this*|ref|
  double element_absolute;
};

Tolerance tolerance_for(DType dtype) {
  if (dtype == DType::f16) return {5e-4, std::ldexp(1.0, -11), 1e-2};
  return {4e-3, std::ldexp(1.0, -8), 1e-2};
}

// One launch's shape on top of a prepared layer.
struct RunSpec {
  std::int64_t m = 1;
  std::int64_t x_stride = 0;  // 0: contiguous (k)
  std::int64_t y_stride = 0;  // 0: contiguous (n)
  double x_stddev = 1.0;
  std::int64_t checked_rows = 64;  // reference rows sampled for large M
};

// Collects one line per launch and prints them together (the lead reports these numbers).
class ErrorLog {
 public:
  explicit ErrorLog(std::string title) : title_(std::move(title)) {}
  void add(const std::string& label, const ReferenceComparison& c) {
    lines_ << "  " << label << ": " << c.summary() << "\n";
    worst_ = std::max(worst_, c.relative_error);
  }
  void note(const std::string& line) { lines_ << "  " << line << "\n"; }
  ~ErrorLog() {
    if (std::uncaught_exceptions() > 0) {  // unwinding from a REQUIRE: plain stderr is safest
      std::fprintf(stderr, "%s\n%s", title_.c_str(), lines_.str().c_str());
      return;
    }
    WARN(title_ << " (worst rel_err " << worst_ << ")\n" << lines_.str());
  }

 private:
  std::string title_;
  std::ostringstream lines_;
  double worst_ = 0.0;
};

std::string label_of(DType dtype, std::int64_t n, std::int64_t k, const RunSpec& spec,
                     const std::string& extra) {
  std::ostringstream s;
  s << dtype_name(dtype) << " N=" << n << " K=" << k << " M=" << spec.m;
  if (spec.x_stride) s << " x_stride=" << spec.x_stride;
  if (spec.y_stride) s << " y_stride=" << spec.y_stride;
  if (!extra.empty()) s << " " << extra;
  return s.str();
}

// Runs linear once on fresh random x (poisoned y), checks the output against the reference
// and that nothing outside [M, N] of y was written. Returns y (full rows incl. stride gap).
std::vector<std::uint16_t> check_linear(const HostNvfp4Weights& w,
                                        const std::vector<std::uint16_t>* bias,
                                        const PreparedLinear& prepared, DType dtype,
                                        const RunSpec& spec, std::uint64_t seed,
                                        const CudaStream& stream, const std::string& extra,
                                        ErrorLog& log) {
  const std::int64_t m = spec.m, n = w.n, k = w.k;
  const std::int64_t xs = spec.x_stride ? spec.x_stride : k;
  const std::int64_t ys = spec.y_stride ? spec.y_stride : n;
  const std::string label = label_of(dtype, n, k, spec, extra);
  INFO(label << " (seed " << seed << ")");
  // The x stride gap holds NaN: a kernel that reads it poisons its output.
  const std::vector<std::uint16_t> x =
      random_half_matrix(dtype, m, k, xs, seed, spec.x_stddev, kPoisonBits);
  DeviceBuffer x_dev(x.size() * sizeof(std::uint16_t));
  x_dev.upload(x);
  DeviceBuffer y_dev(static_cast<std::size_t>(m * ys) * sizeof(std::uint16_t));
  y_dev.fill_bytes(0xFF);

  linear(stream.get(), MatrixView{x_dev.data(), dtype, m, k, spec.x_stride}, prepared,
         MutableMatrixView{y_dev.data(), dtype, m, n, spec.y_stride});
  stream.synchronize();
  std::vector<std::uint16_t> y =
      y_dev.download_vector<std::uint16_t>(static_cast<std::size_t>(m * ys));

  if (ys > n) {
    std::int64_t gap_writes = 0;
    for (std::int64_t r = 0; r < m; ++r) {
      for (std::int64_t c = n; c < ys; ++c)
        gap_writes += y[static_cast<std::size_t>(r * ys + c)] != kPoisonBits;
    }
    CHECK(gap_writes == 0);
  }

  const std::vector<std::int64_t> rows = sample_rows(m, spec.checked_rows, seed);
  std::vector<std::uint16_t> out;
  out.reserve(rows.size() * static_cast<std::size_t>(n));
  for (std::int64_t r : rows) {
    out.insert(out.end(), y.begin() + r * ys, y.begin() + r * ys + n);
  }
  const std::vector<double> ref =
      reference_linear(w, HalfMatrixRef{x.data(), dtype, m, k, xs}, rows, bias);
  const Tolerance tol = tolerance_for(dtype);
  const ReferenceComparison c =
      compare_with_reference(dtype, out, ref, rows, n, tol.element_absolute, tol.element_relative);
  log.add(label, c);
  INFO(c.summary());
  CHECK(c.non_finite_count == 0);
  CHECK(c.relative_error <= tol.relative);
  CHECK(c.bound_violations == 0);
  return y;
}

std::vector<std::uint16_t> random_bias(DType dtype, std::int64_t n, std::uint64_t seed) {
  return random_half_matrix(dtype, 1, n, n, seed, 0.5);
}

struct Shape {
  std::int64_t n;
  std::int64_t k;
};

// NVFP4.md's dense GEMM shapes (N, K).
const std::vector<Shape>& checkpoint_dense_shapes() {
  static const std::vector<Shape> shapes = {
      {6144, 4096},  {28672, 4096}, {4096, 14336}, {4096, 4096}, {10240, 8192},
      {57344, 8192}, {8192, 28672}, {10304, 2688}, {2688, 4096}, {3712, 2688},
      {2688, 3712},  {36864, 7168}, {7168, 18432}};
  return shapes;
}

const DType kActivationDtypes[] = {DType::bf16, DType::f16};

}  // namespace

TEST_CASE("dense linear matches the reference for M from 1 to 16384", "[dense][gpu]") {
  MARLINRT_REQUIRE_GPU();
  const std::uint64_t seed = fresh_test_seed();
  INFO("seed " << seed);
  const std::int64_t ms[] = {1,  2,  7,   8,   9,   15,   16,   17,   31,
                             33, 64, 100, 255, 256, 1000, 4096, 16384};
  CudaStream stream;
  ErrorLog log("M sweep");
  struct Layer {
    HostNvfp4Weights host;
    bool bias;
    const char* what;
  };
  const Layer layers[] = {
      {random_exporter_weights(4096, 4096, mix_seed(seed, 1), 0.02), true, "exporter+bias"},
      {random_full_range_weights(1536, 2560, mix_seed(seed, 2), 0.375f, false), false,
       "full-e4m3-range"},
  };
  std::uint64_t run = 100;
  for (const Layer& layer : layers) {
    for (DType dtype : kActivationDtypes) {
      const std::vector<std::uint16_t> bias =
          random_bias(dtype, layer.host.n, mix_seed(seed, run++));
      const std::vector<std::uint16_t>* bias_ptr = layer.bias ? &bias : nullptr;
      PreparedTestLayer prepared = prepare_host_layer(layer.host, dtype, stream.get(), bias_ptr);
      CHECK(prepared.linear.n() == layer.host.n);
      CHECK(prepared.linear.k() == layer.host.k);
      CHECK(prepared.linear.activation_dtype() == dtype);
      for (std::int64_t m : ms) {
        if (m == 16384 && layer.host.n != 4096) continue;  // one shape is enough at 16384
        RunSpec spec;
        spec.m = m;
        check_linear(layer.host, bias_ptr, prepared.linear, dtype, spec, mix_seed(seed, run++),
                     stream, layer.what, log);
      }
    }
  }
}

TEST_CASE("dense linear matches the reference on every checkpoint dense shape", "[dense][gpu]") {
  MARLINRT_REQUIRE_GPU();
  const std::uint64_t seed = fresh_test_seed();
  INFO("seed " << seed);
  CudaStream stream;
  ErrorLog log("checkpoint dense shapes (exporter weights)");
  std::uint64_t run = 0;
  bool with_bias = false;
  for (const Shape& shape : checkpoint_dense_shapes()) {
    const HostNvfp4Weights host =
        random_exporter_weights(shape.n, shape.k, mix_seed(seed, run++), 0.02);
    with_bias = !with_bias;
    for (DType dtype : kActivationDtypes) {
      const std::vector<std::uint16_t> bias = random_bias(dtype, shape.n, mix_seed(seed, run++));
      const std::vector<std::uint16_t>* bias_ptr = with_bias ? &bias : nullptr;
      PreparedTestLayer prepared = prepare_host_layer(host, dtype, stream.get(), bias_ptr);
      // M = 64: sm_90 runs 3712x2688 and 2688x3712 on the two-block wgmma kernel.
      for (std::int64_t m : {1, 24, 64, 512}) {
        RunSpec spec;
        spec.m = m;
        spec.checked_rows = 16;  // the largest shapes: keep the FP64 reference in seconds
        check_linear(host, bias_ptr, prepared.linear, dtype, spec, mix_seed(seed, run++), stream,
                     with_bias ? "bias" : "", log);
      }
    }
  }
}

TEST_CASE("dense linear pads shapes that are not multiples of the tile", "[dense][gpu]") {
  MARLINRT_REQUIRE_GPU();
  const std::uint64_t seed = fresh_test_seed();
  INFO("seed " << seed);
  CudaStream stream;
  ErrorLog log("padded shapes");
  // Tensor-parallel shards and expert sizes (NVFP4.md) and small odd layers.
  const Shape shapes[] = {{1856, 672}, {2688, 10304}, {1856, 2688}, {2688, 1856}, {1024, 672},
                          {72, 48},    {8, 16},       {24, 208},    {200, 80},    {136, 1040}};
  std::uint64_t run = 0;
  for (const Shape& shape : shapes) {
    const bool full_range = run % 2 == 0;
    const HostNvfp4Weights host =
        // Global scale 1/16 keeps f16 outputs of full-range scales below 65504 at K = 10304
        // (a true output beyond it must round to inf, which would be right but untestable).
        full_range
            ? random_full_range_weights(shape.n, shape.k, mix_seed(seed, run), 0.0625f, false)
            : random_exporter_weights(shape.n, shape.k, mix_seed(seed, run), 0.02);
    ++run;
    for (DType dtype : kActivationDtypes) {
      const std::vector<std::uint16_t> bias = random_bias(dtype, shape.n, mix_seed(seed, run++));
      PreparedTestLayer prepared = prepare_host_layer(host, dtype, stream.get(), &bias);
      for (std::int64_t m : {1, 7, 16, 33, 300}) {
        RunSpec spec;
        spec.m = m;
        check_linear(host, &bias, prepared.linear, dtype, spec, mix_seed(seed, run++), stream,
                     full_range ? "full-e4m3-range+bias" : "exporter+bias", log);
      }
    }
  }
}

TEST_CASE("dense linear cuts 256-column tiles short at the end of N", "[dense][gpu]") {
  MARLINRT_REQUIRE_GPU();
  const std::uint64_t seed = fresh_test_seed();
  INFO("seed " << seed);
  CudaStream stream;
  ErrorLog log("ragged last n-tile");
  // Padded N 1920, 2688 and 3712: 7.5, 10.5 and 14.5 tiles of 256 columns.
  const Shape shapes[] = {{1856, 2688}, {2688, 4096}, {3712, 2688}};
  cudaDeviceProp prop{};
  int device = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  check_cuda(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  const int arch = prop.major * 10 + prop.minor;
  std::uint64_t run = 0;
  for (const Shape& shape : shapes) {
    const HostNvfp4Weights host =
        random_exporter_weights(shape.n, shape.k, mix_seed(seed, run++), 0.02);
    for (DType dtype : kActivationDtypes) {
      RunSpec spec;
      spec.m = 4096;
      if (arch == 90) {  // the case exists on sm_90 only: make sure the plan takes it
        const auto plan = detail::plan_dense(
            spec.m, detail::padded_n(shape.n), detail::padded_k(shape.k), dtype, arch,
            prop.multiProcessorCount, static_cast<int>(prop.sharedMemPerBlockOptin));
        CHECK(plan.key.tile.tile_n == 256);
        CHECK(detail::padded_n(shape.n) % 256 != 0);
      }
      const std::vector<std::uint16_t> bias = random_bias(dtype, shape.n, mix_seed(seed, run++));
      PreparedTestLayer prepared = prepare_host_layer(host, dtype, stream.get(), &bias);
      check_linear(host, &bias, prepared.linear, dtype, spec, mix_seed(seed, run++), stream,
                   "exporter+bias", log);
    }
  }
}

TEST_CASE("dense linear with an N that is not a multiple of 8: correct or clearly refused",
          "[dense][gpu]") {
  MARLINRT_REQUIRE_GPU();
  const std::uint64_t seed = fresh_test_seed();
  INFO("seed " << seed);
  CudaStream stream;
  ErrorLog log("N not a multiple of 8");
  const HostNvfp4Weights host = random_exporter_weights(37, 32, seed, 0.02);
  for (DType dtype : kActivationDtypes) {
    std::optional<PreparedTestLayer> prepared;
    try {
      prepared.emplace(prepare_host_layer(host, dtype, stream.get()));
    } catch (const Error& e) {
      log.note(std::string(dtype_name(dtype)) + " N=37 refused at prepare: " + e.what());
      CHECK((e.status() == Status::invalid_argument || e.status() == Status::unsupported));
      CHECK_THAT(e.what(), Catch::Contains("37"));
      continue;
    }
    for (std::int64_t m : {1, 5, 40}) {
      RunSpec spec;
      spec.m = m;
      try {
        check_linear(host, nullptr, prepared->linear, dtype, spec, mix_seed(seed, m), stream, "",
                     log);
      } catch (const Error& e) {
        log.note(std::string(dtype_name(dtype)) + " N=37 refused at launch: " + e.what());
        CHECK((e.status() == Status::invalid_argument || e.status() == Status::unsupported));
      }
    }
  }
}

TEST_CASE("dense fp16 output stays finite when unscaled partial sums exceed 65504",
          "[dense][gpu]") {
  MARLINRT_REQUIRE_GPU();
  const std::uint64_t seed = fresh_test_seed();
  INFO("seed " << seed);
  CudaStream stream;
  ErrorLog log("fp16 overflow before the global scale");
  // Small weights -> tiny weight_scale_2; x ~ 200: every x*e2m1*e4m3 product and the K sums are
  // far beyond fp16's range until weight_scale_2 is applied, the final output is not.
  const HostNvfp4Weights host = random_exporter_weights(2048, 4096, seed, 1e-3);
  const std::vector<std::uint16_t> bias = random_bias(DType::f16, host.n, mix_seed(seed, 1));
  PreparedTestLayer prepared = prepare_host_layer(host, DType::f16, stream.get(), &bias);
  for (std::int64_t m : {1, 16, 128}) {
    RunSpec spec;
    spec.m = m;
    spec.x_stddev = 200.0;
    const std::uint64_t run_seed = mix_seed(seed, 10 + m);
    check_linear(host, &bias, prepared.linear, DType::f16, spec, run_seed, stream, "x~200", log);

    // Prove the premise on the same data: unscaled sums overflow fp16, outputs do not.
    const std::vector<std::uint16_t> x =
        random_half_matrix(DType::f16, m, host.k, host.k, run_seed, spec.x_stddev, kPoisonBits);
    const std::vector<std::int64_t> rows = sample_rows(m, spec.checked_rows, run_seed);
    const std::vector<double> ref =
        reference_linear(host, HalfMatrixRef{x.data(), DType::f16, m, host.k, host.k}, rows);
    double max_out = 0.0;
    for (double r : ref) max_out = std::max(max_out, std::fabs(r));
    const double max_unscaled = max_out / host.weight_scale_2;
    log.note("M=" + std::to_string(m) + ": max|y| " + std::to_string(max_out) +
             ", max unscaled sum " + std::to_string(max_unscaled));
    CHECK(max_unscaled > 65504.0 * 16);
    CHECK(max_out < 65504.0 / 16);
  }
}

TEST_CASE("dense linear honours row strides larger than K and N", "[dense][gpu][sanitize]") {
  MARLINRT_REQUIRE_GPU();
  const std::uint64_t seed = fresh_test_seed();
  INFO("seed " << seed);
  CudaStream stream;
  ErrorLog log("row strides");
  // 2688x3712: 29 k-tiles of 128, cut into uneven ranges (clusters of 8 on sm_90).
  const Shape shapes[] = {{1856, 672}, {4096, 4096}, {2688, 3712}};
  std::uint64_t run = 0;
  for (const Shape& shape : shapes) {
    const HostNvfp4Weights host =
        random_exporter_weights(shape.n, shape.k, mix_seed(seed, run++), 0.02);
    for (DType dtype : kActivationDtypes) {
      const std::vector<std::uint16_t> bias = random_bias(dtype, shape.n, mix_seed(seed, run++));
      PreparedTestLayer prepared = prepare_host_layer(host, dtype, stream.get(), &bias);
      // M = 1000 on 4096x4096: sm_90 plans 128-row wgmma m-tiles in band order; M = 50 on
      // 2688x3712: the two-block wgmma kernel with a part-filled m-tile.
      for (std::int64_t m : {1, 33, 50, 256, 1000}) {
        RunSpec spec;
        spec.m = m;
        spec.x_stride = shape.k + 72;  // rows stay 16-byte aligned
        spec.y_stride = shape.n + 40;
        check_linear(host, &bias, prepared.linear, dtype, spec, mix_seed(seed, run++), stream,
                     "bias", log);
      }
    }
  }
}

TEST_CASE("dense linear is bitwise deterministic over 10 runs", "[dense][gpu]") {
  MARLINRT_REQUIRE_GPU();
  const std::uint64_t seed = fresh_test_seed();
  INFO("seed " << seed);
  CudaStream stream;
  ErrorLog log("determinism (first run vs reference)");
  // Long K and few output tiles: blocks share columns and reduce across the grid (3712x2688
  // at M = 64: the two-block wgmma kernel, 7 sharers per tile in clusters on sm_90).
  const Shape shapes[] = {{4096, 14336}, {2688, 10304}, {3712, 2688}};
  std::uint64_t run = 0;
  for (const Shape& shape : shapes) {
    const HostNvfp4Weights host =
        random_exporter_weights(shape.n, shape.k, mix_seed(seed, run++), 0.02);
    for (DType dtype : kActivationDtypes) {
      PreparedTestLayer prepared = prepare_host_layer(host, dtype, stream.get());
      for (std::int64_t m : {1, 16, 64, 200}) {
        INFO(dtype_name(dtype) << " N=" << shape.n << " K=" << shape.k << " M=" << m);
        RunSpec spec;
        spec.m = m;
        const std::uint64_t run_seed = mix_seed(seed, run++);
        const std::vector<std::uint16_t> first =
            check_linear(host, nullptr, prepared.linear, dtype, spec, run_seed, stream, "", log);
        const std::vector<std::uint16_t> x =
            random_half_matrix(dtype, m, shape.k, shape.k, run_seed, 1.0);
        DeviceBuffer x_dev(x.size() * sizeof(std::uint16_t));
        x_dev.upload(x);
        DeviceBuffer y_dev(first.size() * sizeof(std::uint16_t));
        int identical = 0;
        for (int repeat = 0; repeat < 10; ++repeat) {
          y_dev.fill_bytes(0xFF);
          linear(stream.get(), MatrixView{x_dev.data(), dtype, m, shape.k, 0}, prepared.linear,
                 MutableMatrixView{y_dev.data(), dtype, m, shape.n, 0});
          stream.synchronize();
          identical += y_dev.download_vector<std::uint16_t>(first.size()) == first;
        }
        CHECK(identical == 10);
      }
    }
  }
}

TEST_CASE("dense linears back to back read what the previous one wrote", "[dense][gpu]") {
  MARLINRT_REQUIRE_GPU();
  const std::uint64_t seed = fresh_test_seed();
  INFO("seed " << seed);
  CudaStream stream;
  ErrorLog log("chained layers (x -> up -> down -> up, no host sync between)");
  // Nemotron's shared expert, up 3712x2688 then down 2688x3712: small layers, where on sm_90
  // each launch starts while the previous one finishes (programmatic dependent launch). The
  // second call reads the first's output and overwrites its input, the third reads that.
  const HostNvfp4Weights up = random_exporter_weights(3712, 2688, mix_seed(seed, 1), 0.02);
  const HostNvfp4Weights down = random_exporter_weights(2688, 3712, mix_seed(seed, 2), 0.02);
  std::uint64_t run = 10;
  for (DType dtype : kActivationDtypes) {
    PreparedTestLayer up_dev = prepare_host_layer(up, dtype, stream.get());
    PreparedTestLayer down_dev = prepare_host_layer(down, dtype, stream.get());
    for (std::int64_t m : {1, 16, 256}) {
      const std::uint64_t run_seed = mix_seed(seed, run++);
      const std::vector<std::uint16_t> x = random_half_matrix(dtype, m, up.k, up.k, run_seed, 1.0);
      DeviceBuffer a(x.size() * sizeof(std::uint16_t)), h(m * up.n * sizeof(std::uint16_t)),
          h2(m * up.n * sizeof(std::uint16_t));
      a.upload(x);
      h.fill_bytes(0xFF);
      h2.fill_bytes(0xFF);
      const auto view = [&](const DeviceBuffer& b, std::int64_t cols) {
        return MatrixView{b.data(), dtype, m, cols, 0};
      };
      const auto out = [&](DeviceBuffer& b, std::int64_t cols) {
        return MutableMatrixView{b.data(), dtype, m, cols, 0};
      };
      linear(stream.get(), view(a, up.k), up_dev.linear, out(h, up.n));
      linear(stream.get(), view(h, down.k), down_dev.linear, out(a, down.n));
      linear(stream.get(), view(a, up.k), up_dev.linear, out(h2, up.n));
      stream.synchronize();
      const auto h_out = h.download_vector<std::uint16_t>(static_cast<std::size_t>(m * up.n));
      const auto a_out = a.download_vector<std::uint16_t>(static_cast<std::size_t>(m * down.n));
      const auto h2_out = h2.download_vector<std::uint16_t>(static_cast<std::size_t>(m * up.n));
      // Each output against the FP64 reference of the input that call saw.
      const auto verify = [&](const HostNvfp4Weights& w, const std::vector<std::uint16_t>& in,
                              const std::vector<std::uint16_t>& y, const char* what) {
        const std::vector<std::int64_t> rows = sample_rows(m, 64, run_seed);
        std::vector<std::uint16_t> sampled;
        for (std::int64_t r : rows)
          sampled.insert(sampled.end(), y.begin() + r * w.n, y.begin() + (r + 1) * w.n);
        const std::vector<double> ref =
            reference_linear(w, HalfMatrixRef{in.data(), dtype, m, w.k, w.k}, rows, nullptr);
        const Tolerance tol = tolerance_for(dtype);
        const ReferenceComparison c = compare_with_reference(
            dtype, sampled, ref, rows, w.n, tol.element_absolute, tol.element_relative);
        log.add(std::string(dtype_name(dtype)) + " M=" + std::to_string(m) + " " + what, c);
        INFO(what << ": " << c.summary());
        CHECK(c.non_finite_count == 0);
        CHECK(c.relative_error <= tol.relative);
        CHECK(c.bound_violations == 0);
      };
      verify(up, x, h_out, "up(x)");
      verify(down, h_out, a_out, "down(up(x)), over x");
      verify(up, a_out, h2_out, "up(down(up(x)))");
    }
  }
}

TEST_CASE("every E4M3 scale times every E2M1 code comes out exactly", "[dense][gpu]") {
  MARLINRT_REQUIRE_GPU();
  CudaStream stream;
  ErrorLog log("exact (code, scale) products");
  // Layer: K = 16 (one block per row), row n has scale byte b(n) and codes 0..15 in column
  // order; x = the 16x16 identity, so y[m, n] = e2m1(m) * e4m3(b(n)) * ws2 alone.
  const std::int64_t k = 16, m = 16;
  std::vector<std::uint8_t> non_negative, negative;
  for (int b = 0; b < 0x7F; ++b) non_negative.push_back(static_cast<std::uint8_t>(b));
  for (int b = 0x80; b < 0xFF; ++b) negative.push_back(static_cast<std::uint8_t>(b));
  // ws2: exact; tiny (results underflow into fp16 subnormals and zero); and two with mantissa
  // bits that force the final rounding (the fp32 product stays exact, so one rounding).
  const float global_scales[] = {1.0f, std::ldexp(1.0f, -20),
                                 1.0f + std::ldexp(1.0f, -9) + std::ldexp(1.0f, -12),
                                 0.75f * std::ldexp(1.0f, -3)};
  for (DType dtype : kActivationDtypes) {
    std::vector<std::uint16_t> x(static_cast<std::size_t>(m * k), half_bits_from_double(dtype, 0));
    for (std::int64_t i = 0; i < 16; ++i) {
      x[static_cast<std::size_t>(i * k + i)] = half_bits_from_double(dtype, 1.0);
    }
    DeviceBuffer x_dev(x.size() * sizeof(std::uint16_t));
    x_dev.upload(x);
    for (const bool use_negative : {false, true}) {
      std::vector<std::uint8_t> bytes = use_negative ? negative : non_negative;
      bytes.push_back(0x38);  // 128 rows: exactness is tested here, not odd N
      const auto n = static_cast<std::int64_t>(bytes.size());
      for (const float ws2 : global_scales) {
        INFO(dtype_name(dtype) << (use_negative ? " negative" : " non-negative") << " scales, ws2 "
                               << ws2);
        HostNvfp4Weights w;
        w.n = n;
        w.k = k;
        w.packed.assign(static_cast<std::size_t>(n * k / 2), 0);
        w.scales = bytes;
        w.weight_scale_2 = ws2;
        for (std::int64_t row = 0; row < n; ++row) {
          for (std::int64_t col = 0; col < k; ++col) {
            w.set_code(row, col, static_cast<std::uint8_t>(col));
          }
        }
        std::optional<PreparedTestLayer> prepared;
        try {
          prepared.emplace(prepare_host_layer(w, dtype, stream.get()));
        } catch (const Error& e) {
          // MARLIN.md: negative scales are exact or rejected with a clear error.
          if (!use_negative) throw;
          CHECK((e.status() == Status::invalid_argument || e.status() == Status::unsupported));
          CHECK_THAT(e.what(), Catch::Contains("negative", Catch::CaseSensitive::No));
          log.note(std::string(dtype_name(dtype)) + ": negative scales refused: " + e.what());
          break;
        }
        DeviceBuffer y_dev(static_cast<std::size_t>(m * n) * sizeof(std::uint16_t));
        y_dev.fill_bytes(0xFF);
        linear(stream.get(), MatrixView{x_dev.data(), dtype, m, k, 0}, prepared->linear,
               MutableMatrixView{y_dev.data(), dtype, m, n, 0});
        stream.synchronize();
        const std::vector<std::uint16_t> y =
            y_dev.download_vector<std::uint16_t>(static_cast<std::size_t>(m * n));
        std::int64_t mismatches = 0;
        std::string first;
        for (std::int64_t code = 0; code < m; ++code) {
          for (std::int64_t row = 0; row < n; ++row) {
            const double exact = e2m1_value(static_cast<std::uint8_t>(code)) *
                                 e4m3_value(bytes[static_cast<std::size_t>(row)]) *
                                 static_cast<double>(ws2);
            const double want = round_to_half(dtype, exact);
            const double got =
                half_bits_to_double(dtype, y[static_cast<std::size_t>(code * n + row)]);
            if (!(got == want)) {  // NaN never matches; +0 == -0
              if (mismatches++ == 0) {
                std::ostringstream s;
                s << "code " << code << " scale byte 0x" << std::hex
                  << int(bytes[static_cast<std::size_t>(row)]) << std::dec << ": got " << got
                  << " want " << want;
                first = s.str();
              }
            }
          }
        }
        std::ostringstream line;
        line << dtype_name(dtype) << (use_negative ? " negative" : " non-negative")
             << " scales, ws2=" << ws2 << ": " << mismatches << " of " << m * n
             << " products inexact" << (first.empty() ? "" : " (first: " + first + ")");
        log.note(line.str());
        INFO(first);
        CHECK(mismatches == 0);
      }
    }
  }
}

TEST_CASE("dense linear with negative block scales: exact or clearly refused", "[dense][gpu]") {
  MARLINRT_REQUIRE_GPU();
  const std::uint64_t seed = fresh_test_seed();
  INFO("seed " << seed);
  CudaStream stream;
  ErrorLog log("negative block scales");
  const HostNvfp4Weights host = random_full_range_weights(1024, 2048, seed, 0.5f, true);
  for (DType dtype : kActivationDtypes) {
    std::optional<PreparedTestLayer> prepared;
    try {
      prepared.emplace(prepare_host_layer(host, dtype, stream.get()));
    } catch (const Error& e) {
      CHECK((e.status() == Status::invalid_argument || e.status() == Status::unsupported));
      CHECK_THAT(e.what(), Catch::Contains("negative", Catch::CaseSensitive::No));
      log.note(std::string(dtype_name(dtype)) + " refused: " + e.what());
      continue;
    }
    for (std::int64_t m : {1, 64}) {
      RunSpec spec;
      spec.m = m;
      check_linear(host, nullptr, prepared->linear, dtype, spec, mix_seed(seed, m), stream,
                   "signed full-e4m3-range", log);
    }
  }
}
