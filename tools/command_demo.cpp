#include "tools/command_demo.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <fmt/format.h>

#include "marlinrt/backend.hpp"
#include "marlinrt/linear.hpp"
#include "marlinrt/runtime.hpp"
#include "runtime/dense_dispatch.hpp"
#include "runtime/fail.hpp"
#include "tools/command_info.hpp"
#include "tools/command_prebuild.hpp"
#include "tools/gpu_inventory.hpp"
#include "tools/host_float16.hpp"
#include "tools/shapes_file.hpp"

namespace marlinrt::cli {
namespace {

using Clock = std::chrono::steady_clock;

double milliseconds_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    detail::fail(Status::cuda_error, "demo: {} failed: {} ({})", what, cudaGetErrorName(err),
                 cudaGetErrorString(err));
  }
}

// Device memory owned for the length of the demo.
class DeviceBytes {
 public:
  explicit DeviceBytes(std::size_t bytes) { check_cuda(cudaMalloc(&ptr_, bytes), "cudaMalloc"); }
  ~DeviceBytes() { cudaFree(ptr_); }
  DeviceBytes(const DeviceBytes&) = delete;
  DeviceBytes& operator=(const DeviceBytes&) = delete;
  void* get() const { return ptr_; }

 private:
  void* ptr_ = nullptr;
};

template <typename T>
void upload(const DeviceBytes& dst, const std::vector<T>& src) {
  check_cuda(cudaMemcpy(dst.get(), src.data(), src.size() * sizeof(T), cudaMemcpyHostToDevice),
             "copy to the GPU");
}

// NVFP4 decoding written from the format definition (docs/NVFP4 notes): E2M1
// magnitudes with the sign in bit 3, and float8_e4m3fn (bias 7, no infinities).
double e2m1_value(unsigned code) {
  constexpr double kMagnitude[8] = {0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0};
  return (code & 8u) ? -kMagnitude[code & 7u] : kMagnitude[code & 7u];
}

double e4m3_value(std::uint8_t byte) {
  const int exponent = (byte >> 3) & 0xf, mantissa = byte & 7;
  if ((byte & 0x7f) == 0x7f) return std::nan("");
  const double magnitude = exponent == 0 ? std::ldexp(mantissa / 8.0, -6)
                                         : std::ldexp(1.0 + mantissa / 8.0, exponent - 7);
  return (byte & 0x80) ? -magnitude : magnitude;
}

int demo_without_gpu(const DemoOptions& options, const std::string& reason) {
  fmt::print("marlinrt demo: no usable GPU here ({}).\n", reason);
  fmt::print(
      "Showing the library's view of this machine, then compiling the weight-preparation "
      "kernels into the cache (NVRTC needs no GPU).\n\n");
  run_info(InfoOptions{});
  PrebuildOptions prebuild;
  std::vector<std::string> archs = options.archs;
  if (archs.empty()) archs = {"sm_80", "sm_86", "sm_89", "sm_90"};
  for (const auto& arch_text : archs) {
    for (const auto& key : detail::prepare_keys(parse_arch(arch_text))) {
      prebuild.keys.push_back(key.to_string());
    }
  }
  fmt::print("\n");
  return run_prebuild(prebuild);
}

int demo_with_gpu(const DemoOptions& options, const GpuInfo& gpu) {
  const DType dtype = parse_activation_dtype(options.dtype);
  const std::int64_t m = options.m, n = options.n, k = options.k;
  fmt::print("marlinrt demo on GPU {}: {} (sm_{}, {} SMs)\n", gpu.ordinal, gpu.name,
             gpu.compute_capability, gpu.sm_count);
  const BackendChoice backend = select_fp4_backend(gpu.compute_capability);
  fmt::print("  backend: {}\n", backend.reason);
  if (!backend.marlin_allowed) return 1;
  if (k % 16 != 0) {
    detail::fail(Status::invalid_argument, "demo: -k {} is not a multiple of 16 (NVFP4 blocks)", k);
  }
  check_cuda(cudaSetDevice(gpu.ordinal), "cudaSetDevice");

  // A random layer that looks like an exported checkpoint: codes uniform, block
  // scales around 1 (E4M3 0x28..0x44 = 0.25..2.5), a small global scale.
  std::mt19937 rng(options.seed);
  std::vector<std::uint8_t> weight(static_cast<std::size_t>(n * k / 2));
  std::vector<std::uint8_t> scale(static_cast<std::size_t>(n * k / 16));
  for (auto& b : weight) b = static_cast<std::uint8_t>(rng() & 0xff);
  for (auto& s : scale) s = static_cast<std::uint8_t>(0x28 + rng() % 0x1d);
  const float ws2 = 0.0125f;
  std::vector<std::uint16_t> x(static_cast<std::size_t>(m * k));
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (auto& v : x) v = half_from_float(dtype, uniform(rng));
  fmt::print("  layer: N={} K={}, {} activations, M={} tokens, random NVFP4 weights (seed {})\n", n,
             k, dtype_name(dtype), m, options.seed);

  DeviceBytes d_weight(weight.size()), d_scale(scale.size()), d_x(x.size() * 2),
      d_y(static_cast<std::size_t>(m * n) * 2);
  upload(d_weight, weight);
  upload(d_scale, scale);
  upload(d_x, x);
  cudaStream_t stream = nullptr;
  check_cuda(cudaStreamCreate(&stream), "cudaStreamCreate");
  struct StreamGuard {
    cudaStream_t s;
    ~StreamGuard() { cudaStreamDestroy(s); }
  } stream_guard{stream};

  Nvfp4Linear layer;
  layer.weight = {d_weight.get(), DType::u8, n, k / 2, 0};
  layer.weight_scale = {d_scale.get(), DType::e4m3, n, k / 16, 0};
  layer.weight_scale_2 = ws2;
  reset_jit_stats();
  auto start = Clock::now();
  PreparedLinear prepared = prepare_nvfp4_linear(layer, dtype, stream);
  check_cuda(cudaStreamSynchronize(stream), "prepare");
  fmt::print("  prepare: {:.1f} ms (first use JIT-compiles or loads the repack kernels)\n",
             milliseconds_since(start));

  const MatrixView xv{d_x.get(), dtype, m, k, 0};
  const MutableMatrixView yv{d_y.get(), dtype, m, n, 0};
  start = Clock::now();
  linear(stream, xv, prepared, yv);
  check_cuda(cudaStreamSynchronize(stream), "linear");
  fmt::print("  first linear: {:.1f} ms (includes compiling or loading its kernel)\n",
             milliseconds_since(start));

  constexpr int kReps = 50;
  cudaEvent_t begin = nullptr, end = nullptr;
  check_cuda(cudaEventCreate(&begin), "cudaEventCreate");
  check_cuda(cudaEventCreate(&end), "cudaEventCreate");
  std::vector<float> times;
  for (int r = 0; r < kReps; ++r) {
    check_cuda(cudaEventRecord(begin, stream), "cudaEventRecord");
    linear(stream, xv, prepared, yv);
    check_cuda(cudaEventRecord(end, stream), "cudaEventRecord");
    check_cuda(cudaEventSynchronize(end), "cudaEventSynchronize");
    float ms = 0;
    check_cuda(cudaEventElapsedTime(&ms, begin, end), "cudaEventElapsedTime");
    times.push_back(ms);
  }
  cudaEventDestroy(begin);
  cudaEventDestroy(end);
  std::sort(times.begin(), times.end());
  const double median_us = times[times.size() / 2] * 1e3;
  const double weight_bytes = static_cast<double>(n * k / 2 + n * k / 16);
  fmt::print("  linear: {:.1f} us per call (median of {}), {:.0f} GB/s of NVFP4 weights\n",
             median_us, kReps, weight_bytes / (median_us * 1e-6) / 1e9);

  std::vector<std::uint16_t> y(static_cast<std::size_t>(m * n));
  check_cuda(cudaMemcpy(y.data(), d_y.get(), y.size() * 2, cudaMemcpyDeviceToHost),
             "copy from the GPU");

  // Host check on up to 8 rows spread over M, every column, in double precision.
  const std::int64_t rows_checked = std::min<std::int64_t>(m, 8);
  double err2 = 0, ref2 = 0, max_err = 0, max_ref = 0;
  bool finite = true;
  for (std::int64_t r = 0; r < rows_checked; ++r) {
    const std::int64_t row = rows_checked == 1 ? 0 : r * (m - 1) / (rows_checked - 1);
    for (std::int64_t col = 0; col < n; ++col) {
      double acc = 0;
      for (std::int64_t i = 0; i < k; ++i) {
        const std::uint8_t byte = weight[static_cast<std::size_t>(col * (k / 2) + i / 2)];
        const double w = e2m1_value((i & 1) ? byte >> 4 : byte & 0xf) *
                         e4m3_value(scale[static_cast<std::size_t>(col * (k / 16) + i / 16)]) * ws2;
        acc += w * half_to_float(dtype, x[static_cast<std::size_t>(row * k + i)]);
      }
      const double out = half_to_float(dtype, y[static_cast<std::size_t>(row * n + col)]);
      finite &= std::isfinite(out);
      err2 += (out - acc) * (out - acc);
      ref2 += acc * acc;
      max_err = std::max(max_err, std::abs(out - acc));
      max_ref = std::max(max_ref, std::abs(acc));
    }
  }
  const double rel = std::sqrt(err2 / std::max(ref2, 1e-30));
  const double tolerance = dtype == DType::bf16 ? 4e-3 : 5e-4;
  const bool ok = finite && rel <= tolerance;
  fmt::print(
      "  check vs host ({} rows, all columns): relative error {:.2e}, max |error| {:.3g} "
      "(max |ref| {:.3g}), tolerance {:.0e}: {}\n",
      rows_checked, rel, max_err, max_ref, tolerance, ok ? "OK" : "FAILED");
  const JitStats s = jit_stats();
  fmt::print("  JIT: {} compiled ({:.2f} s), {} from the disk cache, {} already loaded\n",
             s.compiles, s.compile_seconds, s.disk_hits, s.memory_hits);
  return ok ? 0 : 1;
}

}  // namespace

int run_demo(const DemoOptions& options) {
  const GpuInventory& inventory = gpu_inventory();
  if (!inventory.driver_usable || inventory.gpus.empty()) {
    return demo_without_gpu(
        options, inventory.driver_usable ? "the driver reports no GPUs" : inventory.driver_reason);
  }
  return demo_with_gpu(options, inventory.gpus.front());
}

}  // namespace marlinrt::cli
