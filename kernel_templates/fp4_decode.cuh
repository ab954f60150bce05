// Exact in-register decode of E2M1 weights and E4M3 group scales to fp16/bf16.
//
// Weights: a nibble s|e1 e0 m placed with its sign at bit 15 and e1 e0 m at the top of
// the exponent's low bits is the E2M1 value times a power of two, exactly (the 0.5
// subnormal included): x 2^-14 in fp16 (e1e0m -> bits 11..9), x 2^-126 in bf16
// (-> bits 8..6).
//
// Scales: the E4M3 byte placed the same way is the scale times 2^-8 (fp16) or 2^-120
// (bf16), exactly, subnormals included; multiplying by exact powers of two then gives
// scale * 2^7 (fp16: x 2^15) or scale * 2^119 (bf16: x 2^120 x 2^119). The product
// weight * scale is then e2m1 * e4m3 * 2^-7 in both types: never flushed, never
// rounded (at most 6 significant bits, >= 2^-17), negative scales included. The
// global scale carries the compensating 2^7 in fp32.
#pragma once

#include "ptx.cuh"

namespace marlinrt::kern {

// Fragment registers of two n8 tiles from one repacked word (see repack.cuh):
// out[0], out[1] = b0, b1 of tile 2j; out[2], out[3] = b0, b1 of tile 2j+1.
template <bool kBf16>
__device__ __forceinline__ void decode_e2m1_word(u32 w, u32 (&out)[4]) {
#pragma unroll
  for (int p = 0; p < 4; ++p) {
    const u32 t = w << (4 * p);
    if constexpr (kBf16) {
      out[p] = and_or(t, 0x80008000u, (t >> 6) & 0x01C001C0u);
    } else {
      out[p] = and_or(t, 0x80008000u, (t >> 3) & 0x0E000E00u);
    }
  }
}

// Scales of the bytes at bits 8..15 and 24..31 of x, as a packed pair, times 2^-7
// relative to the weight decode above (see the file comment).
template <bool kBf16>
__device__ __forceinline__ u32 decode_e4m3_pair(u32 x) {
  if constexpr (kBf16) {
    const u32 h = and_or(x, 0x80008000u, (x >> 4) & 0x07F007F0u);  // scale * 2^-120
    return mul2<true>(mul2<true>(h, 0x7B807B80u), 0x7B007B00u);    // * 2^120 * 2^119
  } else {
    const u32 h = and_or(x, 0x80008000u, (x >> 1) & 0x3F803F80u);  // scale * 2^-8
    return mul2<false>(h, 0x78007800u);                            // * 2^15
  }
}

// The 4 scales of the bytes of w (n8 tiles 0..3 in byte order), each broadcast to both
// halves of a register, ready to multiply fragment registers.
template <bool kBf16>
__device__ __forceinline__ void decode_scales4(u32 w, u32 (&out)[4]) {
  const u32 odd = decode_e4m3_pair<kBf16>(w);        // tiles 1, 3
  const u32 even = decode_e4m3_pair<kBf16>(w << 8);  // tiles 0, 2
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
