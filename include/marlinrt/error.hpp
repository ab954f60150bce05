// marlinrt errors: every failure is an exception carrying a status code and a
// message that says what was wrong and what was expected.
#pragma once

#include <stdexcept>
#include <string>

namespace marlinrt {

// Stable numeric values: the C ABI returns them unchanged.
enum class Status : int {
  ok = 0,
  invalid_argument = 1,  // a shape, dtype, pointer, key or option is wrong
  unsupported = 2,       // valid request this build/GPU cannot serve
  no_driver = 3,         // libcuda.so.1 could not be loaded
  no_device = 4,         // driver present but no (such) GPU
  cuda_error = 5,        // a driver call failed
  compile_error = 6,     // NVRTC rejected a kernel
  jit_disabled = 7,      // MARLINRT_JIT=off and the kernel is not cached
  cache_error = 8,       // the kernel cache cannot be used as asked
  stream_capturing = 9,  // would compile/load while a CUDA graph is being captured
  internal = 10,         // a bug in marlinrt: please report
};

const char* status_name(Status s) noexcept;

class Error : public std::runtime_error {
 public:
  Error(Status status, const std::string& message) : std::runtime_error(message), status_(status) {}
  Status status() const noexcept { return status_; }

 private:
  Status status_;
};

}  // namespace marlinrt
