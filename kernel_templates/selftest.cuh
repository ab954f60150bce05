// The self-test kernel: proves the JIT path end to end (render -> NVRTC -> cache -> load
// -> launch) with integer and float work whose result the host recomputes exactly.
//
// Host C++ includes this file too (tests, `marlinrt bench jit`) for the params layout
// and the reference arithmetic, so it stays free of any header and of CUDA-only syntax
// outside the __CUDACC__ blocks.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define MARLINRT_SELFTEST_HD __host__ __device__
#else
#define MARLINRT_SELFTEST_HD
#endif

namespace marlinrt::kern {

struct SelftestParams {
  const unsigned int* input;  // n words
  unsigned int* mixed;        // n words: selftest_mix(input[i], i, seed)
  float* scaled;              // n floats: selftest_scale(mixed[i], scale)
  int n;
  unsigned int seed;
  float scale;  // a power of two keeps the float result exact
};

// An avalanche of xor-shifts and odd multiplies (wrapping 32-bit arithmetic), so that a
// wrong parameter, index or type width changes every output word.
MARLINRT_SELFTEST_HD inline unsigned int selftest_mix(unsigned int x, unsigned int index,
                                                      unsigned int seed) {
  unsigned int h = x ^ (seed + 0x9e3779b9u * (index + 1u));
  h ^= h >> 16;
  h *= 0x6b43a9b5u;
  h ^= h >> 11;
  h *= 0x3c6ef373u;
  h ^= h >> 16;
  return h;
}

// Exact in float: a 16-bit integer times a power of two, minus one.
MARLINRT_SELFTEST_HD inline float selftest_scale(unsigned int mixed, float scale) {
  return static_cast<float>(mixed & 0xffffu) * scale - 1.0f;
}

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
__device__ inline void selftest(const SelftestParams& p) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= p.n) return;
  const unsigned int m = selftest_mix(p.input[i], static_cast<unsigned int>(i), p.seed);
  p.mixed[i] = m;
  p.scaled[i] = selftest_scale(m, p.scale);
}
#endif

}  // namespace marlinrt::kern
