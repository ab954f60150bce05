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

// The 4 scales of the bytes of w (n8 tiles 0..3 in byte order) as two packed pairs:
// pair[0] = tiles 0 (lo), 2 (hi); pair[1] = tiles 1 (lo), 3 (hi). The multiply picks the half
// with an operand selector (mul2_by_half), so no broadcast is needed.
template <bool kBf16>
__device__ __forceinline__ void decode_scale_pairs(u32 w, u32 (&pair)[2]) {
  pair[0] = decode_even_scales(kBf16, w);
  pair[1] = decode_odd_scales(kBf16, w);
}

// Fragment registers b0, b1 of n8 tiles 2j and 2j+1 from weight word `w`, scaled: tile t uses
// half (t / 2) % 2 of pair[t % 2] of the scale word that holds it (decode_scale_pairs).
template <bool kBf16, int kHalf>
__device__ __forceinline__ void decode_scaled_tiles(u32 w, const u32 (&pair)[2], u32 (&b)[4]) {
  u32 f[4];
  decode_e2m1_word<kBf16>(w, f);
  b[0] = mul2_by_half<kBf16, kHalf>(f[0], pair[0]);
  b[1] = mul2_by_half<kBf16, kHalf>(f[1], pair[0]);
  b[2] = mul2_by_half<kBf16, kHalf>(f[2], pair[1]);
  b[3] = mul2_by_half<kBf16, kHalf>(f[3], pair[1]);
}

}  // namespace marlinrt::kern
