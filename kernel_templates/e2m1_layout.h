// Bit layout of a repacked weight word and its decode, shared by the host (runtime/, tests)
// and the NVRTC-compiled kernels: plain C++ only, so the host tests run the kernel's decode.
//
// A word holds 8 E2M1 values (sign s, exponent e1 e0, mantissa m): the lo and hi halves of the
// four mma.m16n8k16 B-fragment registers a lane builds from it (repack.cuh says which weights
// those are). Decoding places each value's bits into a 16-bit float so that it equals the E2M1
// value times a fixed power of two (2^-14 in fp16, 2^-126 in bf16; the 0.5 subnormal included):
//   fp16: s -> bit 15, e1 e0 m -> bits 11 10 9        bf16: s -> bit 15, e1 e0 m -> bits 8 7 6
// (+16 for the hi half). Where each value sits in the word is chosen per dtype so that the
// decode is as cheap as it can be with shifts and masks: no layout lets all four registers be
// one shift + one mask (the bit sets do not tile a 16-bit half), so one or two registers take
// their bits from two displacements (10 operations per word in fp16, 11 in bf16).
#pragma once

#include "host_device.h"

namespace marlinrt::kern {

// Bit positions (lo half; +16 for hi) of s, e1, e0, m of fragment register `reg` in a word.
struct E2m1Bits {
  int s, e1, e0, m;
};
MARLINRT_HOST_DEVICE inline constexpr E2m1Bits e2m1_word_bits(bool bf16, int reg) {
  if (bf16) {
    return reg == 0   ? E2m1Bits{15, 8, 7, 6}      // in place
           : reg == 1 ? E2m1Bits{12, 5, 4, 3}      // << 3
           : reg == 2 ? E2m1Bits{9, 2, 1, 0}       // << 6
                      : E2m1Bits{14, 11, 10, 13};  // s << 1, e1 e0 >> 3, m >> 7
  }
  return reg == 0   ? E2m1Bits{6, 2, 1, 0}       // << 9
         : reg == 1 ? E2m1Bits{9, 5, 4, 3}       // << 6
         : reg == 2 ? E2m1Bits{13, 11, 8, 7}     // e1 in place, s e0 m << 2
                    : E2m1Bits{15, 14, 10, 12};  // s e0 in place, e1 m >> 3
}

// The word bits of E2M1 `code` as value (reg, half) of a word in the layout for the dtype.
MARLINRT_HOST_DEVICE inline constexpr unsigned int place_e2m1(bool bf16, int reg, int half,
                                                              unsigned int code) {
  const E2m1Bits b = e2m1_word_bits(bf16, reg);
  const int o = 16 * half;
  return ((code >> 3) & 1u) << (b.s + o) | ((code >> 2) & 1u) << (b.e1 + o) |
         ((code >> 1) & 1u) << (b.e0 + o) | (code & 1u) << (b.m + o);
}

// The inverse: the E2M1 code of value (reg, half) of word `w`.
MARLINRT_HOST_DEVICE inline constexpr unsigned int extract_e2m1(bool bf16, unsigned int w, int reg,
                                                                int half) {
  const E2m1Bits b = e2m1_word_bits(bf16, reg);
  const int o = 16 * half;
  return ((w >> (b.s + o)) & 1u) << 3 | ((w >> (b.e1 + o)) & 1u) << 2 |
         ((w >> (b.e0 + o)) & 1u) << 1 | ((w >> (b.m + o)) & 1u);
}

// The four fragment registers of word `w` (reg order), each two 16-bit values.
MARLINRT_HOST_DEVICE inline void decode_e2m1_word_fp16(unsigned int w, unsigned int (&out)[4]) {
  constexpr unsigned int kValue = 0x8E008E00u;  // s, e1 e0 m of both halves
  out[0] = (w << 9) & kValue;
  out[1] = (w << 6) & kValue;
  out[2] = (w & 0x08000800u) | ((w << 2) & 0x86008600u);
  out[3] = (w & 0x84008400u) | ((w >> 3) & 0x0A000A00u);
}

MARLINRT_HOST_DEVICE inline void decode_e2m1_word_bf16(unsigned int w, unsigned int (&out)[4]) {
  constexpr unsigned int kValue = 0x81C081C0u;  // s, e1 e0 m of both halves
  out[0] = w & kValue;
  out[1] = (w << 3) & kValue;
  out[2] = (w << 6) & kValue;
  out[3] = ((w >> 3) & 0x01800180u) | ((w >> 7) & 0x00400040u) | ((w << 1) & 0x80008000u);
}

}  // namespace marlinrt::kern
