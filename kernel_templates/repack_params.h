// Parameters of the preparation kernels (repack.cuh), shared with the host.
#pragma once

namespace marlinrt::kern {

struct RepackWeightsParams {
  const unsigned char* weight;  // [n, k/2] packed E2M1, element 2i in the low nibble
  long long row_stride;         // bytes between rows of `weight`
  const unsigned char* scales;  // [n, k/16] float8_e4m3fn: their signs fold into the weights
  long long scale_row_stride;   // bytes between rows of `scales`
  int n, k, n_padded, k_padded;
  int bf16;           // 1: the bf16 word layout, 0: fp16 (e2m1_layout.h)
  unsigned int* out;  // (n_padded/64) * (k_padded/16) * 128 words
};

struct RepackScalesParams {
  const unsigned char* scales;  // [n, k/16] float8_e4m3fn
  long long row_stride;         // bytes between rows of `scales`
  int n, k, n_padded, k_padded;
  unsigned char* out;  // (n_padded/64) * (k_padded/16) * 64 bytes
  int* nan_count;      // incremented once per NaN scale byte found
};

}  // namespace marlinrt::kern
