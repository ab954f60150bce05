// Exact in-register decode of E2M1 weights and group scales to fp16/bf16.
//
// Weights: an E2M1 value s|e1 e0 m placed with its sign at bit 15 and e1 e0 m at the top of
// the exponent's low bits is the E2M1 value times a power of two, exactly (the 0.5
// subnormal included): x 2^-14 in fp16 (e1e0m -> bits 11..9), x 2^-126 in bf16
// (-> bits 8..6). The word layouts that make this cheap are in e2m1_layout.h.
//
// Scales: prepare re-encodes each E4M3 scale as an unsigned code with a 5-bit exponent
// (scale_code.h), so that bit placement alone gives scale * 2^7 (fp16) or scale * 2^119
// (bf16) for every finite E4M3 magnitude, subnormals included; signs and zeros were folded
// into the weights. The product weight * scale is then e2m1 * e4m3 * 2^-7 in both types:
// never flushed, never rounded (at most 6 significant bits, >= 2^-17). The global scale
// carries the compensating 2^7 in fp32.
#pragma once

#include "e2m1_layout.h"
#include "ptx.cuh"
#include "scale_code.h"

namespace marlinrt::kern {

// Fragment registers of two n8 tiles from one repacked word (see e2m1_layout.h):
// out[0], out[1] = b0, b1 of tile 2j; out[2], out[3] = b0, b1 of tile 2j+1.
template <bool kBf16>
__device__ __forceinline__ void decode_e2m1_word(u32 w, u32 (&out)[4]) {
  if constexpr (kBf16) {
    decode_e2m1_word_bf16(w, out);
  } else {
    decode_e2m1_word_fp16(w, out);
  }
}

// The 4 scales of the bytes of w (n8 tiles 0..3 in byte order), each broadcast to both
// halves of a register, ready to multiply fragment registers.
template <bool kBf16>
__device__ __forceinline__ void decode_scales4(u32 w, u32 (&out)[4]) {
  const u32 odd = decode_scale_pair(kBf16, w);        // tiles 1, 3
  const u32 even = decode_scale_pair(kBf16, w << 8);  // tiles 0, 2
  out[0] = prmt(even, 0, 0x1010);
  out[1] = prmt(odd, 0, 0x1010);
  out[2] = prmt(even, 0, 0x3232);
  out[3] = prmt(odd, 0, 0x3232);
}

// The 8 scales of a lane's 8 n8 tiles (bytes of lo, hi in tile order).
template <bool kBf16>
__device__ __forceinline__ void decode_scales(u32 lo, u32 hi, u32 (&out)[8]) {
  u32 first[4], second[4];
  decode_scales4<kBf16>(lo, first);
  decode_scales4<kBf16>(hi, second);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    out[i] = first[i];
    out[4 + i] = second[i];
  }
}

}  // namespace marlinrt::kern
