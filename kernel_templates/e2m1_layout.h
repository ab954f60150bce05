// Bit layout of a repacked weight word and its decode, shared by the host (runtime/, tests)
// and the NVRTC-compiled kernels: plain C++ only, so the host tests run the kernel's decode.
//
// A word holds 8 E2M1 values (sign s, exponent e1 e0, mantissa m): the lo and hi halves of the
// four mma.m16n8k16 B-fragment registers a lane builds from it (repack.cuh says which weights
// those are). Decoding places each value's bits into a 16-bit float so that it equals the E2M1
// value times a fixed power of two (2^-14 in fp16, 2^-126 in bf16; the 0.5 subnormal included):
//   fp16: s -> bit 15, e1 e0 m -> bits 11 10 9        bf16: s -> bit 15, e1 e0 m -> bits 8 7 6
// (+16 for the hi half). The word's layout differs by dtype so that the decode is cheap:
//   fp16: value (reg, half) is the nibble 4 * (3 - reg + 4 * half), bits s e1 e0 m from the top;
//         register reg is (w << 4 reg) masked and shifted once more for the magnitude.
//   bf16: registers 0, 1, 2 keep their bits exactly 0, 3, 6 places below where they decode to,
//         so each is one shift and one mask; register 3 takes the 8 bits left over.
#pragma once

#include "host_device.h"

namespace marlinrt::kern {

// Bit positions (lo half; +16 for hi) of s, e1, e0, m of register `reg` in a bf16 word.
struct E2m1Bits {
  int s, e1, e0, m;
};
MARLINRT_HOST_DEVICE inline constexpr E2m1Bits bf16_word_bits(int reg) {
  return reg == 0   ? E2m1Bits{15, 8, 7, 6}
         : reg == 1 ? E2m1Bits{12, 5, 4, 3}
         : reg == 2 ? E2m1Bits{9, 2, 1, 0}
                    : E2m1Bits{14, 11, 10, 13};
}

// The word bits of E2M1 `code` as value (reg, half) of a word in the layout for the dtype.
MARLINRT_HOST_DEVICE inline constexpr unsigned int place_e2m1(bool bf16, int reg, int half,
                                                              unsigned int code) {
  if (!bf16) return (code & 0xFu) << (4 * (3 - reg + 4 * half));
  const E2m1Bits b = bf16_word_bits(reg);
  const int o = 16 * half;
  return ((code >> 3) & 1u) << (b.s + o) | ((code >> 2) & 1u) << (b.e1 + o) |
         ((code >> 1) & 1u) << (b.e0 + o) | (code & 1u) << (b.m + o);
}

// The inverse: the E2M1 code of value (reg, half) of word `w`.
MARLINRT_HOST_DEVICE inline constexpr unsigned int extract_e2m1(bool bf16, unsigned int w, int reg,
                                                                int half) {
  if (!bf16) return (w >> (4 * (3 - reg + 4 * half))) & 0xFu;
  const E2m1Bits b = bf16_word_bits(reg);
  const int o = 16 * half;
  return ((w >> (b.s + o)) & 1u) << 3 | ((w >> (b.e1 + o)) & 1u) << 2 |
         ((w >> (b.e0 + o)) & 1u) << 1 | ((w >> (b.m + o)) & 1u);
}

// The four fragment registers of word `w` (reg order), each two 16-bit values.
// fp16: w << 4 reg brings nibbles 3 - reg and 7 - reg to bits 12..15 and 28..31.
MARLINRT_HOST_DEVICE inline unsigned int decode_e2m1_fp16_at_top(unsigned int t) {
  return (t & 0x80008000u) | ((t >> 3) & 0x0E000E00u);
}
MARLINRT_HOST_DEVICE inline void decode_e2m1_word_fp16(unsigned int w, unsigned int (&out)[4]) {
  out[0] = decode_e2m1_fp16_at_top(w);
  out[1] = decode_e2m1_fp16_at_top(w << 4);
  out[2] = decode_e2m1_fp16_at_top(w << 8);
  out[3] = decode_e2m1_fp16_at_top(w << 12);
}

MARLINRT_HOST_DEVICE inline void decode_e2m1_word_bf16(unsigned int w, unsigned int (&out)[4]) {
  constexpr unsigned int kValue = 0x81C081C0u;  // s, e1 e0 m of both halves
  out[0] = w & kValue;
  out[1] = (w << 3) & kValue;
  out[2] = (w << 6) & kValue;
  out[3] = ((w >> 3) & 0x01800180u) | ((w >> 7) & 0x00400040u) | ((w << 1) & 0x80008000u);
}

}  // namespace marlinrt::kern
