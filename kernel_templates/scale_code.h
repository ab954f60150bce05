// The kernel's group-scale format, shared by the host (runtime/, tests) and the kernels.
//
// Prepare turns each E4M3 block scale into an unsigned byte E << 3 | M meaning
// 2^(E - 22) * (1 + M/8), E in [13, 30]: every finite E4M3 magnitude, subnormals normalized,
// exactly. A negative scale's sign moves into its 16 weights (E2M1 code ^ 8) and a zero scale
// zeroes them, so weight * scale is unchanged. Bit placement alone then expands a code to
// scale * 2^7 in fp16 (exponent E - 15) or scale * 2^119 in bf16 (exponent E + 224 - 127),
// all normal, without a multiply.
#pragma once

#include "host_device.h"

namespace marlinrt::kern {

// The scale code of an E4M3 byte (NaN bytes are rejected before they get here). Zero gives
// the code of 1.0: its weights are zero.
MARLINRT_HOST_DEVICE inline constexpr unsigned char scale_code(unsigned int e4m3) {
  const unsigned int e = (e4m3 >> 3) & 15u, m = e4m3 & 7u;
  if (e == 0) {
    if (m == 0) return 22u << 3;
    const unsigned int top = m >= 4 ? 2u : m >= 2 ? 1u : 0u;  // m/8 * 2^-6 = 2^(top-9) * 1.f
    return static_cast<unsigned char>((13u + top) << 3 | ((m << (3 - top)) & 7u));
  }
  return static_cast<unsigned char>((e + 15u) << 3 | m);  // 2^(e-7): E = e - 7 + 22
}

// The E2M1 code of a weight whose block scale is the E4M3 byte `e4m3`, with the scale's sign
// folded in: negated for a negative scale, +0 for a zero scale.
MARLINRT_HOST_DEVICE inline constexpr unsigned int fold_scale_sign(unsigned int e2m1,
                                                                   unsigned int e4m3) {
  if ((e4m3 & 0x7Fu) == 0) return 0u;
  return e4m3 & 0x80u ? e2m1 ^ 8u : e2m1;
}

// (x & mask) | bits in one lop3: the compiler splits the plain expression in two.
MARLINRT_HOST_DEVICE inline unsigned int mask_or(unsigned int x, unsigned int mask,
                                                 unsigned int bits) {
#if defined(__CUDA_ARCH__)
  unsigned int d;
  asm("lop3.b32 %0, %1, %2, %3, 0xEA;\n" : "=r"(d) : "r"(x), "r"(mask), "r"(bits));
  return d;
#else
  return (x & mask) | bits;
#endif
}

// The scales of the codes in the odd bytes of w (bits 8..15, 24..31) as a packed fp16 or
// bf16 pair: the code's bits land in the exponent and mantissa with one shift and one mask.
MARLINRT_HOST_DEVICE inline unsigned int decode_odd_scales(bool bf16, unsigned int w) {
  return bf16 ? mask_or(w >> 4, 0x0FF00FF0u, 0x70007000u) : (w >> 1) & 0x7F807F80u;
}

// The same for the even bytes (bits 0..7, 16..23).
MARLINRT_HOST_DEVICE inline unsigned int decode_even_scales(bool bf16, unsigned int w) {
  return bf16 ? mask_or(w << 4, 0x0FF00FF0u, 0x70007000u) : (w << 7) & 0x7F807F80u;
}

}  // namespace marlinrt::kern
