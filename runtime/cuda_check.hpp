// Turning a failed CUDA driver call into marlinrt::Error(cuda_error).
#pragma once

#include <cuda.h>

#include <string_view>

namespace marlinrt::detail {

// Throws Error(cuda_error): "<what> failed: CUDA_ERROR_X (driver's description)".
[[noreturn]] void throw_cuda_error(CUresult result, std::string_view what);

// `what` says what was being done, e.g. "allocating 4096 bytes on device 0".
inline void check(CUresult result, std::string_view what) {
  if (result != CUDA_SUCCESS) [[unlikely]] {
    throw_cuda_error(result, what);
  }
}

}  // namespace marlinrt::detail
