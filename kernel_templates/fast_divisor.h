// Division by a divisor fixed at launch, for dividends in [0, 2^31): one multiply-high and one
// shift instead of the ~25-instruction integer division (which small layers paid in every
// block's prologue). Shared by the host (which makes it) and the kernels (which use it).
//
// With l = ceil(log2 d) and magic = floor(2^(31+l) / d) + 1 (< 2^32), n / d equals
// (2n * magic) >> (32 + l): the error magic - 2^(31+l)/d <= 1 adds less than n / 2^(31+l)
// < 1/d to n/d, too little to reach the next integer.
#pragma once

#include "host_device.h"

namespace marlinrt::kern {

struct FastDivisor {
  unsigned int magic;
  int shift;  // l

  static constexpr FastDivisor make(unsigned int d) {  // 1 <= d <= 2^31
    int l = 0;
    while ((1ull << l) < d) ++l;
    return {static_cast<unsigned int>((1ull << (31 + l)) / d + 1), l};
  }
  // n / d for 0 <= n < 2^31.
  MARLINRT_HOST_DEVICE unsigned int divide(unsigned int n) const {
#if defined(__CUDA_ARCH__)
    unsigned int hi;
    asm("mul.hi.u32 %0, %1, %2;\n" : "=r"(hi) : "r"(n << 1), "r"(magic));
    return hi >> shift;
#else
    return static_cast<unsigned int>((static_cast<unsigned long long>(n << 1) * magic) >> 32) >>
           shift;
#endif
  }
};

}  // namespace marlinrt::kern
