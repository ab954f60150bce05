#include "marlinrt/error.hpp"

namespace marlinrt {

const char* status_name(Status s) noexcept {
  switch (s) {
    case Status::ok:
      return "ok";
    case Status::invalid_argument:
      return "invalid_argument";
    case Status::unsupported:
      return "unsupported";
    case Status::no_driver:
      return "no_driver";
    case Status::no_device:
      return "no_device";
    case Status::cuda_error:
      return "cuda_error";
    case Status::compile_error:
      return "compile_error";
    case Status::jit_disabled:
      return "jit_disabled";
    case Status::cache_error:
      return "cache_error";
    case Status::stream_capturing:
      return "stream_capturing";
    case Status::internal:
      return "internal";
  }
  return "unknown";
}

}  // namespace marlinrt
