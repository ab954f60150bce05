// Preparation kernels: ModelOpt NVFP4 tensors -> the GEMM's layout.
//
// Weights. The padded [n_padded, k_padded] matrix is cut into units of 16 (k) x 64 (n);
// units are stored n-block major ([n/64][k/16]) so a column of tiles streams
// contiguously. A unit is 32 lanes x 4 words: lane (g = lane/4, t = lane%4), word j
// holds the m16n8k16 B-fragment values of that lane for the n8 tiles 2j and 2j+1:
//   column n0 = 16j + g (tile 2j) and n1 = n0 + 8 (tile 2j+1), rows k = 2t, 2t+1, 2t+8, 2t+9.
// Fragment register reg, half h of the word holds weight
//   reg 0: (n0, 2t + h)    reg 1: (n0, 2t + 8 + h)    reg 2: (n1, 2t + h)    reg 3: (n1, 2t + 8 +
//   h)
// with its bits where e2m1_layout.h puts them for the activation dtype, and the sign of its
// block scale folded in (scale_code.h). Padding holds code 0 (+0).
//
// Scales. Same unit grid; a unit is 8 x 8 bytes: [g][tile], the scale code (scale_code.h) of
// column 8*tile + g of the unit.
#pragma once

#include "e2m1_layout.h"
#include "repack_params.h"
#include "scale_code.h"

namespace marlinrt::kern {

__device__ __forceinline__ unsigned int e2m1_code(const RepackWeightsParams& p, int n, int k) {
  if (n >= p.n || k >= p.k) return 0u;
  const unsigned int byte = p.weight[n * p.row_stride + (k >> 1)];
  return (byte >> ((k & 1) * 4)) & 0xFu;
}

__device__ void repack_weights(const RepackWeightsParams p) {
  const int k_units = p.k_padded / 16;
  const long long words = static_cast<long long>(p.n_padded / 64) * k_units * 128;
  for (long long idx = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; idx < words;
       idx += static_cast<long long>(gridDim.x) * blockDim.x) {
    const int j = static_cast<int>(idx & 3);
    const int lane = static_cast<int>((idx >> 2) & 31);
    const long long unit = idx >> 7;
    const int kb = static_cast<int>(unit % k_units);
    const int nb = static_cast<int>(unit / k_units);
    const int g = lane >> 2, t = lane & 3;
    const int n0 = nb * 64 + 16 * j + g, n1 = n0 + 8;
    const int k0 = kb * 16 + 2 * t;
    // All eight values lie in the scale block kb of columns n0 and n1.
    const bool in_k = kb < p.k / 16;
    const unsigned int s0 = n0 < p.n && in_k ? p.scales[n0 * p.scale_row_stride + kb] : 0x38u;
    const unsigned int s1 = n1 < p.n && in_k ? p.scales[n1 * p.scale_row_stride + kb] : 0x38u;
    auto c0 = [&](int k) { return fold_scale_sign(e2m1_code(p, n0, k), s0); };
    auto c1 = [&](int k) { return fold_scale_sign(e2m1_code(p, n1, k), s1); };
    const bool bf16 = p.bf16 != 0;
    unsigned int w = 0;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      w |= place_e2m1(bf16, 0, h, c0(k0 + h)) | place_e2m1(bf16, 1, h, c0(k0 + 8 + h)) |
           place_e2m1(bf16, 2, h, c1(k0 + h)) | place_e2m1(bf16, 3, h, c1(k0 + 8 + h));
    }
    p.out[idx] = w;
  }
}

__device__ void repack_scales(const RepackScalesParams p) {
  const int k_units = p.k_padded / 16;
  const long long bytes = static_cast<long long>(p.n_padded / 64) * k_units * 64;
  for (long long idx = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; idx < bytes;
       idx += static_cast<long long>(gridDim.x) * blockDim.x) {
    const int tile = static_cast<int>(idx & 7);
    const int g = static_cast<int>((idx >> 3) & 7);
    const long long unit = idx >> 6;
    const int kb = static_cast<int>(unit % k_units);
    const int nb = static_cast<int>(unit / k_units);
    const int n = nb * 64 + tile * 8 + g;
    unsigned int s = 0x38u;  // padding: 1.0 (its weights are zero)
    if (n < p.n && kb < p.k / 16) {
      s = p.scales[n * p.row_stride + kb];
      if ((s & 0x7F) == 0x7F) atomicAdd(p.nan_count, 1);
    }
    p.out[idx] = scale_code(s);
  }
}

}  // namespace marlinrt::kern
