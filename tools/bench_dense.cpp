#include "tools/bench_dense.hpp"

#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <library_types.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "kernel_templates/gemm_params.h"
#include "marlinrt/error.hpp"
#include "marlinrt/linear.hpp"
#include "runtime/gemm_trace.hpp"
#include "tools/gemm_trace_report.hpp"
#include "tools/host_float16.hpp"
#include "tools/png_plot.hpp"

namespace marlinrt::cli {
namespace {

// ---- CUDA runtime helpers ----

void check_cuda(cudaError_t status, const std::string& what) {
  if (status == cudaSuccess) return;
  throw Error(Status::cuda_error,
              "bench dense: " + what + " failed: " + cudaGetErrorString(status));
}

class DeviceMemory {
 public:
  DeviceMemory() = default;
  explicit DeviceMemory(std::size_t bytes) : bytes_(bytes) {
    if (bytes > 0) {
      check_cuda(cudaMalloc(&data_, bytes),
                 "cudaMalloc of " + std::to_string(bytes >> 20) + " MiB");
    }
  }
  DeviceMemory(DeviceMemory&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  DeviceMemory& operator=(DeviceMemory&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  ~DeviceMemory() {
    if (data_) cudaFree(data_);
  }
  void* get() const noexcept { return data_; }
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

class StreamHandle {
 public:
  StreamHandle() {
    check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  }
  ~StreamHandle() { cudaStreamDestroy(stream_); }
  StreamHandle(const StreamHandle&) = delete;
  StreamHandle& operator=(const StreamHandle&) = delete;
  cudaStream_t get() const noexcept { return stream_; }
  void sync() const { check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }

 private:
  cudaStream_t stream_ = nullptr;
};

class EventHandle {
 public:
  EventHandle() { check_cuda(cudaEventCreate(&event_), "cudaEventCreate"); }
  ~EventHandle() { cudaEventDestroy(event_); }
  EventHandle(const EventHandle&) = delete;
  EventHandle& operator=(const EventHandle&) = delete;
  cudaEvent_t get() const noexcept { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

void upload(void* dst, const void* src, std::size_t bytes, cudaStream_t stream) {
  check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream), "upload");
  check_cuda(cudaStreamSynchronize(stream), "upload");
}

// ---- cuBLAS, loaded at run time (the library itself never links it) ----

// The few cuBLAS ABI values used (stable since cuBLAS 11), declared here rather than through
// cublas_api.h, which drags cuda_fp16.h/cuda_bf16.h into this translation unit.
using cublasHandle_t = struct cublasContext*;
using cublasStatus_t = int;
constexpr cublasStatus_t CUBLAS_STATUS_SUCCESS = 0;
enum cublasOperation_t : int { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };
enum cublasComputeType_t : int { CUBLAS_COMPUTE_32F = 68 };
enum cublasGemmAlgo_t : int { CUBLAS_GEMM_DEFAULT = -1 };

class Cublas {
 public:
  // Null when no libcublas can be loaded; `why` then says what was tried.
  static std::unique_ptr<Cublas> load(std::string& why) {
    void* lib = nullptr;
    std::string tried;
    for (const char* name : {"libcublas.so.13", "libcublas.so.12"}) {
      lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (lib) break;
      tried += std::string(" ") + name;
    }
    if (!lib) {
      // Next to the CUDA runtime this program uses (toolkit installs keep them together).
      Dl_info info{};
      if (dladdr(reinterpret_cast<void*>(&cudaGetDeviceCount), &info) && info.dli_fname) {
        const std::filesystem::path dir = std::filesystem::path(info.dli_fname).parent_path();
        for (const char* name : {"libcublas.so.13", "libcublas.so.12"}) {
          lib = dlopen((dir / name).c_str(), RTLD_NOW | RTLD_LOCAL);
          if (lib) break;
          tried += " " + (dir / name).string();
        }
      }
    }
    if (!lib) {
      why = "cannot load cuBLAS (tried" + tried + ")";
      return nullptr;
    }
    auto api = std::unique_ptr<Cublas>(new Cublas(lib));
    if (!api->create_ || !api->destroy_ || !api->set_stream_ || !api->gemm_ex_) {
      why = "libcublas lacks cublasCreate_v2/cublasSetStream_v2/cublasGemmEx";
      return nullptr;
    }
    if (api->create_(&api->handle_) != CUBLAS_STATUS_SUCCESS) {
      why = "cublasCreate_v2 failed";
      return nullptr;
    }
    return api;
  }

  ~Cublas() {
    if (handle_) destroy_(handle_);
    dlclose(lib_);
  }

  // y[M, N] = x[M, K] * W[N, K]^T, all row-major 16-bit, FP32 accumulation.
  void gemm(cudaStream_t stream, DType dtype, const void* w, const void* x, void* y, std::int64_t m,
            std::int64_t n, std::int64_t k) {
    check_status(set_stream_(handle_, stream), "cublasSetStream_v2");
    const float alpha = 1.0f, beta = 0.0f;
    const cudaDataType type = dtype == DType::bf16 ? CUDA_R_16BF : CUDA_R_16F;
    // Column-major view: y^T[N, M] = W[N, K] (a K x N column-major matrix, transposed) * x^T.
    check_status(gemm_ex_(handle_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n),
                          static_cast<int>(m), static_cast<int>(k), &alpha, w, type,
                          static_cast<int>(k), x, type, static_cast<int>(k), &beta, y, type,
                          static_cast<int>(n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 "cublasGemmEx");
  }

 private:
  using CreateFn = cublasStatus_t (*)(cublasHandle_t*);
  using DestroyFn = cublasStatus_t (*)(cublasHandle_t);
  using SetStreamFn = cublasStatus_t (*)(cublasHandle_t, cudaStream_t);
  using GemmExFn = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int,
                                      int, int, const void*, const void*, cudaDataType, int,
                                      const void*, cudaDataType, int, const void*, void*,
                                      cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);

  explicit Cublas(void* lib)
      : lib_(lib),
        create_(reinterpret_cast<CreateFn>(dlsym(lib, "cublasCreate_v2"))),
        destroy_(reinterpret_cast<DestroyFn>(dlsym(lib, "cublasDestroy_v2"))),
        set_stream_(reinterpret_cast<SetStreamFn>(dlsym(lib, "cublasSetStream_v2"))),
        gemm_ex_(reinterpret_cast<GemmExFn>(dlsym(lib, "cublasGemmEx"))) {}

  static void check_status(cublasStatus_t status, const char* what) {
    if (status != CUBLAS_STATUS_SUCCESS) {
      throw Error(Status::cuda_error, std::string("bench dense: ") + what +
                                          " failed with cuBLAS status " +
                                          std::to_string(static_cast<int>(status)));
    }
  }

  void* lib_;
  CreateFn create_;
  DestroyFn destroy_;
  SetStreamFn set_stream_;
  GemmExFn gemm_ex_;
  cublasHandle_t handle_ = nullptr;
};

// ---- timing ----

// Holds the stream at a host callback until the timed launches are all queued, so the GPU runs
// them back to back and the events measure kernel time rather than host launch latency. The
// wait gives up after a while so a full launch queue can never deadlock the run.
struct LaunchGate {
  std::atomic<bool> open{false};
};

void CUDART_CB wait_for_gate(void* user) {
  auto* gate = static_cast<LaunchGate*>(user);
  const auto start = std::chrono::steady_clock::now();
  while (!gate->open.load(std::memory_order_acquire) &&
         std::chrono::steady_clock::now() - start < std::chrono::milliseconds(200)) {
    std::this_thread::yield();
  }
}

struct LaunchTiming {
  double gpu_us = 0.0;   // GPU time per launch: median over batches of batch time / launches
  double host_us = 0.0;  // host time to enqueue one launch (median over batches)
};

// Times launch(i) (i = 0, 1, ...: callers rotate through weight copies) in gated batches with
// one event pair per batch, so per-launch event overhead stays out of the numbers. When
// gpu_us comes out close to host_us the launches were host-bound (the gate did not hold the
// GPU back). Repetitions shrink for slow cases so that each case takes about two seconds.
LaunchTiming time_launches(cudaStream_t stream, int warmup, int repetitions,
                           const std::function<void(int)>& launch) {
  int index = 0;
  for (int i = 0; i < warmup; ++i) launch(index++);
  EventHandle start, end;
  check_cuda(cudaEventRecord(start.get(), stream), "cudaEventRecord");
  launch(index++);
  check_cuda(cudaEventRecord(end.get(), stream), "cudaEventRecord");
  check_cuda(cudaEventSynchronize(end.get()), "cudaEventSynchronize");
  float probe_ms = 0.0f;
  check_cuda(cudaEventElapsedTime(&probe_ms, start.get(), end.get()), "cudaEventElapsedTime");
  const int reps =
      std::clamp(static_cast<int>(2000.0 / std::max(probe_ms, 1e-3f)), 5, std::max(5, repetitions));
  const int batch = std::clamp(reps / 5, 1, 32);
  const int batches = (reps + batch - 1) / batch;

  std::vector<double> gpu, host;
  for (int b = 0; b < batches; ++b) {
    LaunchGate gate;
    check_cuda(cudaLaunchHostFunc(stream, wait_for_gate, &gate), "cudaLaunchHostFunc");
    check_cuda(cudaEventRecord(start.get(), stream), "cudaEventRecord");
    const auto host_start = std::chrono::steady_clock::now();
    for (int j = 0; j < batch; ++j) launch(index++);
    const auto host_end = std::chrono::steady_clock::now();
    check_cuda(cudaEventRecord(end.get(), stream), "cudaEventRecord");
    gate.open.store(true, std::memory_order_release);
    check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    float ms = 0.0f;
    check_cuda(cudaEventElapsedTime(&ms, start.get(), end.get()), "cudaEventElapsedTime");
    gpu.push_back(1000.0 * ms / batch);
    host.push_back(std::chrono::duration<double, std::micro>(host_end - host_start).count() /
                   batch);
  }
  const auto median = [](std::vector<double>& v) {
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  return {median(gpu), median(host)};
}

// One launch(0) with the GEMM trace set to `buffer` (zeroed first), downloaded. A gated pass
// over copies 1..copies-1 goes first, so that copy 0 is the least recently used (its weights
// come from DRAM) and the traced launch runs right behind others, as in the timed batches.
std::vector<unsigned long long> traced_launch(cudaStream_t stream, const DeviceMemory& buffer,
                                              int copies, const std::function<void(int)>& launch) {
  struct TraceScope {  // unset even when a launch throws
    TraceScope(void* b, std::size_t slots) {
      detail::set_gemm_trace(static_cast<unsigned long long*>(b), slots);
    }
    ~TraceScope() { detail::set_gemm_trace(nullptr, 0); }
  };
  check_cuda(cudaMemsetAsync(buffer.get(), 0, buffer.bytes(), stream), "cudaMemsetAsync");
  LaunchGate gate;
  check_cuda(cudaLaunchHostFunc(stream, wait_for_gate, &gate), "cudaLaunchHostFunc");
  try {
    for (int c = 1; c < copies; ++c) launch(c);
    const TraceScope scope(buffer.get(), buffer.bytes() / sizeof(unsigned long long));
    launch(0);
  } catch (...) {
    gate.open.store(true, std::memory_order_release);
    cudaStreamSynchronize(stream);  // the gate's callback must be done before `gate` goes
    throw;
  }
  gate.open.store(true, std::memory_order_release);
  std::vector<unsigned long long> slots(buffer.bytes() / sizeof(unsigned long long));
  check_cuda(
      cudaMemcpyAsync(slots.data(), buffer.get(), buffer.bytes(), cudaMemcpyDeviceToHost, stream),
      "download of the trace");
  check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  return slots;
}

// Device-to-device copy bandwidth in bytes per microsecond (bytes read + written).
double measure_copy_bandwidth(cudaStream_t stream) {
  const std::size_t bytes = std::size_t{1} << 30;
  DeviceMemory src(bytes), dst(bytes);
  check_cuda(cudaMemsetAsync(src.get(), 0x5A, bytes, stream), "cudaMemsetAsync");
  const double us =
      time_launches(stream, 2, 10, [&](int) {
        check_cuda(cudaMemcpyAsync(dst.get(), src.get(), bytes, cudaMemcpyDeviceToDevice, stream),
                   "cudaMemcpyAsync device->device");
      }).gpu_us;
  return 2.0 * static_cast<double>(bytes) / us;
}

// GPU time of the smallest launch (a 4-byte memset kernel) timed like the GEMMs: the fixed
// cost per back-to-back launch that no kernel can go below on this machine.
double measure_launch_floor(cudaStream_t stream) {
  DeviceMemory scratch(16);
  return time_launches(stream, 20, 200,
                       [&](int) {
                         check_cuda(cudaMemsetAsync(scratch.get(), 0, 4, stream),
                                    "cudaMemsetAsync");
                       })
      .gpu_us;
}

// ---- random layers and activations ----

void parallel_chunks(std::int64_t count,
                     const std::function<void(std::int64_t, std::int64_t)>& body) {
  const std::int64_t threads = std::clamp<std::int64_t>(std::thread::hardware_concurrency(), 1,
                                                        std::max<std::int64_t>(1, count));
  const std::int64_t chunk = (count + threads - 1) / threads;
  std::vector<std::thread> pool;
  for (std::int64_t t = 1; t < threads; ++t) {
    pool.emplace_back([&, t] { body(t * chunk, std::min(count, (t + 1) * chunk)); });
  }
  body(0, std::min(count, chunk));
  for (std::thread& thread : pool) thread.join();
}

std::uint64_t next_random(std::uint64_t& state) {  // xorshift64*
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545F4914F6CDD1Dull;
}

double e4m3_to_double(std::uint8_t byte) {
  const int exponent = (byte >> 3) & 0xF, mantissa = byte & 7;
  const double magnitude =
      exponent == 0 ? std::ldexp(mantissa, -9) : std::ldexp(1.0 + mantissa / 8.0, exponent - 7);
  return (byte & 0x80) ? -magnitude : magnitude;
}

constexpr double kE2m1[16] = {0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6};

struct HostLayer {
  std::vector<std::uint8_t> packed;  // [n, k/2]
  std::vector<std::uint8_t> scales;  // [n, k/16]
  float weight_scale_2 = 1.0f / 64;
};

// Random codes and block scales in [0.5, 2] (0x30..0x40): real-looking magnitudes, no zeros.
HostLayer random_layer(std::int64_t n, std::int64_t k, std::uint64_t seed) {
  HostLayer layer;
  layer.packed.resize(static_cast<std::size_t>(n * k / 2));
  layer.scales.resize(static_cast<std::size_t>(n * k / 16));
  parallel_chunks(n, [&](std::int64_t begin, std::int64_t end) {
    std::uint64_t state = seed ^ (0x9E3779B97F4A7C15ull * static_cast<std::uint64_t>(begin + 1));
    for (std::int64_t i = begin * (k / 2); i < end * (k / 2); ++i) {
      layer.packed[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(next_random(state));
    }
    for (std::int64_t i = begin * (k / 16); i < end * (k / 16); ++i) {
      layer.scales[static_cast<std::size_t>(i)] =
          static_cast<std::uint8_t>(0x30 + next_random(state) % 17);
    }
  });
  return layer;
}

// The layer as dense 16-bit weights [n, k] for cuBLAS.
std::vector<std::uint16_t> dequantize(const HostLayer& layer, std::int64_t n, std::int64_t k,
                                      DType dtype) {
  std::vector<std::uint16_t> table(256 * 16);  // [scale byte][code]
  for (int s = 0; s < 256; ++s) {
    for (int c = 0; c < 16; ++c) {
      table[static_cast<std::size_t>(s * 16 + c)] = half_from_float(
          dtype, static_cast<float>(kE2m1[c] * e4m3_to_double(static_cast<std::uint8_t>(s)) *
                                    layer.weight_scale_2));
    }
  }
  std::vector<std::uint16_t> out(static_cast<std::size_t>(n * k));
  parallel_chunks(n, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t row = begin; row < end; ++row) {
      for (std::int64_t col = 0; col < k; col += 2) {
        const std::uint8_t byte = layer.packed[static_cast<std::size_t>((row * k + col) / 2)];
        const std::size_t scale =
            layer.scales[static_cast<std::size_t>(row * (k / 16) + col / 16)] * 16u;
        out[static_cast<std::size_t>(row * k + col)] = table[scale + (byte & 0x0F)];
        out[static_cast<std::size_t>(row * k + col + 1)] = table[scale + (byte >> 4)];
      }
    }
  });
  return out;
}

std::vector<std::uint16_t> random_activations(std::int64_t count, DType dtype, std::uint64_t seed) {
  std::vector<std::uint16_t> out(static_cast<std::size_t>(count));
  parallel_chunks(count, [&](std::int64_t begin, std::int64_t end) {
    std::uint64_t state = seed ^ (0xD1B54A32D192ED03ull * static_cast<std::uint64_t>(begin + 1));
    for (std::int64_t i = begin; i < end; ++i) {
      const double u = static_cast<double>(next_random(state) >> 11) * 0x1.0p-53;  // [0, 1)
      out[static_cast<std::size_t>(i)] = half_from_float(dtype, static_cast<float>(2.0 * u - 1.0));
    }
  });
  return out;
}

// ||a - b|| / ||b|| over 16-bit outputs.
double relative_difference(const std::vector<std::uint16_t>& a, const std::vector<std::uint16_t>& b,
                           DType dtype) {
  double diff = 0.0, ref = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double x = half_to_float(dtype, a[i]), y = half_to_float(dtype, b[i]);
    diff += (x - y) * (x - y);
    ref += y * y;
  }
  return ref > 0.0 ? std::sqrt(diff / ref) : std::sqrt(diff);
}

// ---- one benchmark case ----

struct CaseResult {
  std::string shape;
  std::int64_t n = 0, k = 0, m = 0;
  DType dtype = DType::bf16;
  int weight_copies = 0;
  double us = 0.0;       // GPU time per launch
  double host_us = 0.0;  // host time to enqueue one launch (launch overhead)
  double cublas_us = NAN;
  double target_us = NAN;  // M <= 16 only
  double rel_diff = NAN;   // vs cuBLAS, M <= 256 only
  double copy_us = NAN;    // a device copy of the NVFP4 byte count, sources rotated like ours
};

std::string shape_label(const DenseBenchShape& s) {
  const std::string dims = std::to_string(s.n) + "x" + std::to_string(s.k);
  return s.name.empty() ? dims : s.name + " " + dims;
}

std::string format_number(double v, const char* format) {
  if (std::isnan(v)) return "-";
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, format, v);
  return buffer;
}

void validate(const BenchDenseOptions& options) {
  for (const DenseBenchShape& s : options.shapes) {
    if (s.n <= 0 || s.k <= 0 || s.k % 16 != 0) {
      throw Error(Status::invalid_argument,
                  "bench dense: shape " + std::to_string(s.n) + "x" + std::to_string(s.k) +
                      " is invalid: N and K must be positive and K a multiple of 16");
    }
  }
  for (const std::int64_t m : options.m_values) {
    if (m <= 0) {
      throw Error(Status::invalid_argument,
                  "bench dense: M = " + std::to_string(m) + " is invalid: M must be positive");
    }
  }
  for (const DType d : options.dtypes) {
    if (d != DType::f16 && d != DType::bf16) {
      throw Error(Status::invalid_argument, "bench dense: dtype " + std::string(dtype_name(d)) +
                                                " is not an activation dtype: use bf16 or f16");
    }
  }
}

void write_csv(const std::filesystem::path& path, const std::vector<CaseResult>& results,
               double copy_bw) {
  std::ofstream csv(path);
  csv << "shape,n,k,m,dtype,us,gbps,tflops,cublas_us,speedup,target_us,meets_target,"
         "weight_copies,rel_diff_vs_cublas,copy_gbps,host_us_per_launch,same_size_copy_us\n";
  for (const CaseResult& r : results) {
    const double bytes = static_cast<double>(r.n * r.k / 2 + r.n * r.k / 16);
    const double flops = 2.0 * static_cast<double>(r.m) * r.n * r.k;
    csv << '"' << r.shape << "\"," << r.n << ',' << r.k << ',' << r.m << ',' << dtype_name(r.dtype)
        << ',' << r.us << ',' << bytes / r.us / 1e3 << ',' << flops / r.us / 1e6 << ','
        << format_number(r.cublas_us, "%.3f") << ',' << format_number(r.cublas_us / r.us, "%.4f")
        << ',' << format_number(r.target_us, "%.3f") << ','
        << (std::isnan(r.target_us) ? "" : (r.us <= r.target_us ? "yes" : "no")) << ','
        << r.weight_copies << ',' << format_number(r.rel_diff, "%.3g") << ',' << copy_bw / 1e3
        << ',' << r.host_us << ',' << format_number(r.copy_us, "%.3f") << '\n';
  }
  if (!csv) {
    throw Error(Status::invalid_argument, "bench dense: cannot write " + path.string());
  }
}

void write_plots(const std::filesystem::path& dir, const std::vector<CaseResult>& results,
                 const std::vector<DenseBenchShape>& shapes, const std::vector<DType>& dtypes,
                 bool have_cublas) {
  for (std::size_t d = 0; d < dtypes.size(); ++d) {
    LineChart chart;
    chart.title =
        std::string("NVFP4 dense speed-up vs cuBLAS ") + std::string(dtype_name(dtypes[d]));
    chart.x_label = "M (tokens)";
    chart.y_label = "speed-up";
    chart.log_x = true;
    chart.horizontal_markers = {{1.0, "1x"}, {16.0 / 4.5, "ideal 3.56x"}};
    if (have_cublas) {
      for (const DenseBenchShape& s : shapes) {
        LineSeries series;
        series.label = shape_label(s);
        for (const CaseResult& r : results) {
          if (r.n == s.n && r.k == s.k && r.dtype == dtypes[d] && r.shape == series.label) {
            series.points.emplace_back(static_cast<double>(r.m), r.cublas_us / r.us);
          }
        }
        chart.series.push_back(std::move(series));
      }
    }
    const std::string name = d == 0
                                 ? "dense_speedup.png"
                                 : "dense_speedup_" + std::string(dtype_name(dtypes[d])) + ".png";
    write_png((dir / name).string(), render_line_chart(chart));
  }
}

}  // namespace

std::vector<DenseBenchShape> default_dense_bench_shapes() {
  return {{6144, 4096, "L3.1-8B qkv"},      {28672, 4096, "L3.1-8B gate_up"},
          {4096, 14336, "L3.1-8B down"},    {4096, 4096, "L3.1-8B o"},
          {10240, 8192, "L3.3-70B qkv"},    {57344, 8192, "L3.3-70B gate_up"},
          {8192, 28672, "L3.3-70B down"},   {10304, 2688, "Nano in_proj"},
          {2688, 4096, "Nano out_proj"},    {3712, 2688, "Nano shared up"},
          {2688, 3712, "Nano shared down"}, {36864, 7168, "DSR1 gate_up"},
          {7168, 18432, "DSR1 down"}};
}

int run_bench_dense(const BenchDenseOptions& given) {
  BenchDenseOptions options = given;
  if (options.shapes.empty()) options.shapes = default_dense_bench_shapes();
  if (options.m_values.empty()) options.m_values = {1, 16, 64, 256, 1024, 4096, 16384};
  if (options.dtypes.empty()) options.dtypes = {DType::bf16, DType::f16};
  if (options.warmup < 0) options.warmup = 10;
  if (options.repetitions <= 0) options.repetitions = 50;
  validate(options);
  if (options.trace) enable_gemm_trace_build();  // before the first kernel is requested

  int device_count = 0;
  if (const cudaError_t e = cudaGetDeviceCount(&device_count);
      e != cudaSuccess || device_count == 0) {
    throw Error(Status::no_device, std::string("bench dense needs a CUDA GPU: ") +
                                       (e != cudaSuccess ? cudaGetErrorString(e) : "none found"));
  }
  const std::filesystem::path out_dir(options.output_dir);
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) {
    throw Error(Status::invalid_argument, "bench dense: cannot create the output directory '" +
                                              options.output_dir + "': " + ec.message());
  }

  int device = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  cudaDeviceProp props{};
  check_cuda(cudaGetDeviceProperties(&props, device), "cudaGetDeviceProperties");
  int l2_bytes = 0;
  check_cuda(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device), "L2 size");
  StreamHandle stream;
  const double copy_bw = measure_copy_bandwidth(stream.get());  // bytes per us
  std::string cublas_why;
  std::unique_ptr<Cublas> cublas = Cublas::load(cublas_why);
  const double launch_floor_us = measure_launch_floor(stream.get());
  std::printf(
      "bench dense on %s (%d SMs, L2 %d MiB): device copy %.0f GB/s (read+write), "
      "launch floor %.2f us (4-byte memset, back to back)\n",
      props.name, props.multiProcessorCount, l2_bytes >> 20, copy_bw / 1e3, launch_floor_us);
  if (!cublas) std::printf("warning: %s; cuBLAS columns are left empty\n", cublas_why.c_str());
  std::unique_ptr<GemmTraceReport> trace;
  DeviceMemory trace_buffer;
  if (options.trace) {
    std::printf(
        "warning: --trace: every GEMM, the timed ones included, is the traced build "
        "(-DMARLINRT_GEMM_TRACE); its timings include the trace stores\n");
    trace = std::make_unique<GemmTraceReport>(out_dir / "trace.csv");
    trace_buffer = DeviceMemory(kTraceBlocks * kern::kTraceSlots * sizeof(unsigned long long));
  }
  std::printf("%-28s %6s %6s %6s %5s %10s %8s %8s %10s %8s %10s\n", "shape", "N", "K", "M", "dtype",
              "us", "GB/s", "TFLOP/s", "cuBLAS us", "speedup", "target us");
  std::fflush(stdout);

  const std::int64_t max_m = *std::max_element(options.m_values.begin(), options.m_values.end());
  std::vector<CaseResult> results;
  std::uint64_t seed = 0x6D61726C696E7274ull;  // fixed: runs are comparable
  for (const DenseBenchShape& shape : options.shapes) {
    const std::int64_t n = shape.n, k = shape.k;
    const HostLayer host = random_layer(n, k, seed++);
    const std::size_t nvfp4_bytes = static_cast<std::size_t>(n * k / 2 + n * k / 16);
    DeviceMemory weight(host.packed.size()), scales(host.scales.size());
    upload(weight.get(), host.packed.data(), host.packed.size(), stream.get());
    upload(scales.get(), host.scales.data(), host.scales.size(), stream.get());
    Nvfp4Linear layer;
    layer.weight = {weight.get(), DType::u8, n, k / 2, 0};
    layer.weight_scale = {scales.get(), DType::e4m3, n, k / 16, 0};
    layer.weight_scale_2 = host.weight_scale_2;

    // Enough independent copies that one pass over them overflows L2 twice: every launch
    // streams its weights from DRAM, as in a model whose layers run one after another.
    const int copies = static_cast<int>(2 * static_cast<std::size_t>(l2_bytes) / nvfp4_bytes) + 1;
    const std::size_t shape_results = results.size();
    for (const DType dtype : options.dtypes) {
      std::vector<PreparedLinear> prepared;
      for (int c = 0; c < copies; ++c) {
        prepared.push_back(prepare_nvfp4_linear(layer, dtype, stream.get()));
      }
      stream.sync();
      const std::size_t dense_bytes = static_cast<std::size_t>(n * k) * 2;
      const int dense_copies =
          static_cast<int>(2 * static_cast<std::size_t>(l2_bytes) / dense_bytes) + 1;
      std::vector<DeviceMemory> dense;
      if (cublas) {
        const std::vector<std::uint16_t> w16 = dequantize(host, n, k, dtype);
        dense.emplace_back(dense_bytes);
        upload(dense[0].get(), w16.data(), dense_bytes, stream.get());
        for (int c = 1; c < dense_copies; ++c) {
          dense.emplace_back(dense_bytes);
          check_cuda(cudaMemcpyAsync(dense.back().get(), dense[0].get(), dense_bytes,
                                     cudaMemcpyDeviceToDevice, stream.get()),
                     "copy of dense weights");
        }
      }
      const std::vector<std::uint16_t> x_host = random_activations(max_m * k, dtype, seed++);
      DeviceMemory x(x_host.size() * 2), y(static_cast<std::size_t>(max_m * n) * 2);
      upload(x.get(), x_host.data(), x_host.size() * 2, stream.get());

      for (const std::int64_t m : options.m_values) {
        CaseResult r;
        r.shape = shape_label(shape);
        r.n = n;
        r.k = k;
        r.m = m;
        r.dtype = dtype;
        r.weight_copies = copies;
        const MatrixView xv{x.get(), dtype, m, k, 0};
        const MutableMatrixView yv{y.get(), dtype, m, n, 0};
        const auto ours = [&](int i) {
          linear(stream.get(), xv, prepared[static_cast<std::size_t>(i % copies)], yv);
        };
        const LaunchTiming timing =
            time_launches(stream.get(), options.warmup, options.repetitions, ours);
        r.us = timing.gpu_us;
        r.host_us = timing.host_us;
        if (cublas) {
          r.cublas_us =
              time_launches(stream.get(), options.warmup, options.repetitions, [&](int i) {
                cublas->gemm(stream.get(), dtype,
                             dense[static_cast<std::size_t>(i % dense_copies)].get(), x.get(),
                             y.get(), m, n, k);
              }).gpu_us;
          if (m <= 256) {  // the two results should agree: a fast wrong answer is no answer
            const std::size_t count = static_cast<std::size_t>(m * n);
            std::vector<std::uint16_t> ours(count), theirs(count);
            linear(stream.get(), xv, prepared[0], yv);
            check_cuda(cudaMemcpyAsync(ours.data(), y.get(), count * 2, cudaMemcpyDeviceToHost,
                                       stream.get()),
                       "download");
            cublas->gemm(stream.get(), dtype, dense[0].get(), x.get(), y.get(), m, n, k);
            check_cuda(cudaMemcpyAsync(theirs.data(), y.get(), count * 2, cudaMemcpyDeviceToHost,
                                       stream.get()),
                       "download");
            stream.sync();
            r.rel_diff = relative_difference(ours, theirs, dtype);
          }
        }
        if (m <= 16) r.target_us = 3.0 + static_cast<double>(nvfp4_bytes) / (0.9 * copy_bw);
        const double gbps = static_cast<double>(nvfp4_bytes) / r.us / 1e3;
        const double tflops = 2.0 * static_cast<double>(m) * n * k / r.us / 1e6;
        std::string target = format_number(r.target_us, "%.1f");
        if (!std::isnan(r.target_us)) target += r.us <= r.target_us ? " ok" : " MISS";
        std::printf("%-28s %6lld %6lld %6lld %5s %10.1f %8.0f %8.1f %10s %8s %10s", r.shape.c_str(),
                    static_cast<long long>(n), static_cast<long long>(k), static_cast<long long>(m),
                    std::string(dtype_name(dtype)).c_str(), r.us, gbps, tflops,
                    format_number(r.cublas_us, "%.1f").c_str(),
                    format_number(r.cublas_us / r.us, "%.2fx").c_str(), target.c_str());
        // The gate holds the GPU until a batch is queued, so GPU time below the host's
        // enqueue time is normal; GPU time equal to it suggests the gate did not hold and the
        // number is the launch rate, not the kernel time.
        if (std::fabs(r.us - r.host_us) <= 0.1 * r.host_us) {
          std::printf("  (= host enqueue time %.1f us: launch-bound?)", r.host_us);
        }
        if (!std::isnan(r.rel_diff) && r.rel_diff > 2e-2) {
          std::printf("  (differs from cuBLAS: rel %.3g)", r.rel_diff);
        }
        std::printf("\n");
        std::fflush(stdout);
        results.push_back(r);
        if (trace) {
          trace->add(n, k, m, dtype, traced_launch(stream.get(), trace_buffer, copies, ours));
        }
      }
    }
    // What the machine does with the same bytes, once per shape: a device-to-device copy of
    // the NVFP4 byte count (it reads them and writes them), sources rotated over the same
    // footprint as the weights.
    DeviceMemory src(nvfp4_bytes * static_cast<std::size_t>(copies)), dst(nvfp4_bytes);
    check_cuda(cudaMemsetAsync(src.get(), 0x5A, nvfp4_bytes * copies, stream.get()),
               "cudaMemsetAsync");
    const double copy_us =
        time_launches(stream.get(), options.warmup, options.repetitions, [&](int i) {
          const auto* from = static_cast<const char*>(src.get()) +
                             static_cast<std::size_t>(i % copies) * nvfp4_bytes;
          check_cuda(
              cudaMemcpyAsync(dst.get(), from, nvfp4_bytes, cudaMemcpyDeviceToDevice, stream.get()),
              "cudaMemcpyAsync device->device");
        }).gpu_us;
    std::printf("%-28s same-size device copy (%.1f MB read and written): %.1f us\n",
                shape_label(shape).c_str(), static_cast<double>(nvfp4_bytes) / 1e6, copy_us);
    for (std::size_t i = shape_results; i < results.size(); ++i) results[i].copy_us = copy_us;
  }

  write_csv(out_dir / "dense.csv", results, copy_bw);
  write_plots(out_dir, results, options.shapes, options.dtypes, cublas != nullptr);
  std::printf("wrote %s and %s%s\n", (out_dir / "dense.csv").string().c_str(),
              (out_dir / "dense_speedup.png").string().c_str(),
              trace ? (" and " + (out_dir / "trace.csv").string()).c_str() : "");
  return 0;
}

}  // namespace marlinrt::cli
