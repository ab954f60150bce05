// One NVFP4 linear layer, end to end: ModelOpt-style tensors on the GPU ->
// prepare once -> run y = x * W^T -> check a few outputs on the host.
//
// Build: part of the marlinrt tree (target example_dense_linear), or in your own
// project with find_package(marlinrt) and the CUDA runtime (CUDA::cudart).
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include <marlinrt/marlinrt.hpp>

namespace {

// bf16 <-> float on the host (round to nearest even; no NaNs occur here).
std::uint16_t to_bf16(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
float from_bf16(std::uint16_t h) {
  const std::uint32_t u = static_cast<std::uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// The NVFP4 element and scale formats, for the host check.
double e2m1(unsigned code) {
  static const double magnitude[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};
  return (code & 8) ? -magnitude[code & 7] : magnitude[code & 7];
}
double e4m3(std::uint8_t b) {
  const int e = (b >> 3) & 15, m = b & 7;
  const double v = e ? std::ldexp(1 + m / 8.0, e - 7) : std::ldexp(m / 8.0, -6);
  return (b & 0x80) ? -v : v;
}

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(err));
    std::exit(1);
  }
}

template <typename T>
T* to_device(const std::vector<T>& host) {
  void* p = nullptr;
  check(cudaMalloc(&p, host.size() * sizeof(T)), "cudaMalloc");
  check(cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), "upload");
  return static_cast<T*>(p);
}

}  // namespace

int main() {
  constexpr std::int64_t N = 512, K = 1024, M = 8;

  // What a ModelOpt checkpoint holds for one layer (random here).
  std::mt19937 rng(42);
  std::vector<std::uint8_t> weight(N * K / 2);  // two E2M1 codes per byte, element 2i low
  std::vector<std::uint8_t> scale(N * K / 16);  // one E4M3 scale per 16 weights
  const float weight_scale_2 = 0.02f;           // the global scale
  for (auto& b : weight) b = static_cast<std::uint8_t>(rng());
  for (auto& s : scale) s = static_cast<std::uint8_t>(0x30 + rng() % 16);  // 0.5 .. 1.875
  std::vector<std::uint16_t> x(M * K);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (auto& v : x) v = to_bf16(uniform(rng));

  check(cudaSetDevice(0), "cudaSetDevice");
  cudaStream_t stream;
  check(cudaStreamCreate(&stream), "cudaStreamCreate");
  std::uint8_t* d_weight = to_device(weight);
  std::uint8_t* d_scale = to_device(scale);
  std::uint16_t* d_x = to_device(x);
  std::uint16_t* d_y = nullptr;
  check(cudaMalloc(&d_y, M * N * 2), "cudaMalloc");

  std::vector<std::uint16_t> y(M * N);
  try {
    marlinrt::Nvfp4Linear layer;
    layer.weight = {d_weight, marlinrt::DType::u8, N, K / 2};
    layer.weight_scale = {d_scale, marlinrt::DType::e4m3, N, K / 16};
    layer.weight_scale_2 = weight_scale_2;

    // Once per layer. The checkpoint tensors could be freed afterwards.
    const marlinrt::PreparedLinear w =
        marlinrt::prepare_nvfp4_linear(layer, marlinrt::DType::bf16, stream);

    // Per forward pass: asynchronous on `stream`.
    marlinrt::linear(stream, {d_x, marlinrt::DType::bf16, M, K}, w,
                     {d_y, marlinrt::DType::bf16, M, N});
    check(cudaMemcpyAsync(y.data(), d_y, y.size() * 2, cudaMemcpyDeviceToHost, stream), "download");
    check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  } catch (const marlinrt::Error& e) {
    std::fprintf(stderr, "marlinrt error (%s): %s\n", marlinrt::status_name(e.status()), e.what());
    return 1;
  }

  // Check row 0 against the definition: w[n,k] = e2m1 * e4m3(scale) * weight_scale_2.
  double worst = 0, largest = 0;
  for (std::int64_t n = 0; n < N; ++n) {
    double ref = 0;
    for (std::int64_t k = 0; k < K; ++k) {
      const std::uint8_t byte = weight[n * K / 2 + k / 2];
      ref += from_bf16(x[k]) * e2m1(k % 2 ? byte >> 4 : byte & 15) *
             e4m3(scale[n * K / 16 + k / 16]) * weight_scale_2;
    }
    worst = std::fmax(worst, std::fabs(from_bf16(y[n]) - ref));
    largest = std::fmax(largest, std::fabs(ref));
  }
  std::printf("y[0, 0..3] = %.4f %.4f %.4f %.4f\n", from_bf16(y[0]), from_bf16(y[1]),
              from_bf16(y[2]), from_bf16(y[3]));
  std::printf("row 0: max |error| %.3g for outputs up to %.3g (bf16 rounding is ~%.3g)\n", worst,
              largest, largest / 256);

  cudaFree(d_weight);
  cudaFree(d_scale);
  cudaFree(d_x);
  cudaFree(d_y);
  cudaStreamDestroy(stream);
  return worst <= largest / 64 ? 0 : 1;
}
