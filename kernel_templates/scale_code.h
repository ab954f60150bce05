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

// The scales of the codes at bits 8..15 and 24..31 of x as a packed fp16 or bf16 pair.
MARLINRT_HOST_DEVICE inline unsigned int decode_scale_pair(bool bf16, unsigned int x) {
  if (!bf16) return (x >> 1) & 0x7F807F80u;
#if defined(__CUDA_ARCH__)
  // (x >> 4 & mask) | exponent as one lop3: the compiler splits the plain expression in two.
  unsigned int d;
  asm("lop3.b32 %0, %1, %2, %3, 0xEA;\n"
      : "=r"(d)
      : "r"(x >> 4), "r"(0x0FF00FF0u), "r"(0x70007000u));
  return d;
#else
  return ((x >> 4) & 0x0FF00FF0u) | 0x70007000u;
#endif
}

}  // namespace marlinrt::kern
