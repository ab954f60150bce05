// The C ABI (include/marlinrt/marlinrt.h): thin wrappers that validate the
// C-level arguments, call the C++ API and turn every exception into a status
// plus a thread-local message.
#include "marlinrt/marlinrt.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <utility>

#include "marlinrt/backend.hpp"
#include "marlinrt/error.hpp"
#include "marlinrt/kernel_key.hpp"
#include "marlinrt/linear.hpp"
#include "marlinrt/runtime.hpp"

// The C enums promise the C++ numbers: keep them in lock step.
static_assert(MARLINRT_OK == static_cast<int>(marlinrt::Status::ok));
static_assert(MARLINRT_INVALID_ARGUMENT == static_cast<int>(marlinrt::Status::invalid_argument));
static_assert(MARLINRT_UNSUPPORTED == static_cast<int>(marlinrt::Status::unsupported));
static_assert(MARLINRT_NO_DRIVER == static_cast<int>(marlinrt::Status::no_driver));
static_assert(MARLINRT_NO_DEVICE == static_cast<int>(marlinrt::Status::no_device));
static_assert(MARLINRT_CUDA_ERROR == static_cast<int>(marlinrt::Status::cuda_error));
static_assert(MARLINRT_COMPILE_ERROR == static_cast<int>(marlinrt::Status::compile_error));
static_assert(MARLINRT_JIT_DISABLED == static_cast<int>(marlinrt::Status::jit_disabled));
static_assert(MARLINRT_CACHE_ERROR == static_cast<int>(marlinrt::Status::cache_error));
static_assert(MARLINRT_STREAM_CAPTURING == static_cast<int>(marlinrt::Status::stream_capturing));
static_assert(MARLINRT_INTERNAL == static_cast<int>(marlinrt::Status::internal));
static_assert(MARLINRT_F16 == static_cast<int>(marlinrt::DType::f16));
static_assert(MARLINRT_BF16 == static_cast<int>(marlinrt::DType::bf16));
static_assert(MARLINRT_F32 == static_cast<int>(marlinrt::DType::f32));
static_assert(MARLINRT_U8 == static_cast<int>(marlinrt::DType::u8));
static_assert(MARLINRT_E4M3 == static_cast<int>(marlinrt::DType::e4m3));
static_assert(MARLINRT_I32 == static_cast<int>(marlinrt::DType::i32));
static_assert(MARLINRT_BACKEND_MARLIN == static_cast<int>(marlinrt::Fp4Backend::marlin));
static_assert(MARLINRT_BACKEND_NATIVE_FP4 == static_cast<int>(marlinrt::Fp4Backend::native_fp4));
static_assert(MARLINRT_BACKEND_UNSUPPORTED == static_cast<int>(marlinrt::Fp4Backend::unsupported));

// The opaque handle of the C ABI owns the C++ object.
struct marlinrt_linear_s {
  marlinrt::PreparedLinear prepared;
};

namespace {

thread_local std::string last_error_message;

marlinrt_status fail_with(marlinrt::Status status, std::string message) {
  try {
    last_error_message = std::move(message);
  } catch (...) {
    // Out of memory while storing the message: keep the status at least.
  }
  return static_cast<marlinrt_status>(status);
}

marlinrt_status invalid(const char* function, const char* what) {
  return fail_with(marlinrt::Status::invalid_argument, std::string(function) + ": " + what);
}

// Runs `body` (which returns a status) and maps every exception to a status.
template <typename Body>
marlinrt_status guarded(const char* function, Body&& body) noexcept {
  try {
    return body();
  } catch (const marlinrt::Error& e) {
    return fail_with(e.status(), e.what());
  } catch (const std::bad_alloc&) {
    return fail_with(marlinrt::Status::internal, std::string(function) + ": out of host memory");
  } catch (const std::exception& e) {
    return fail_with(marlinrt::Status::internal,
                     std::string(function) + ": unexpected error: " + e.what());
  } catch (...) {
    return fail_with(marlinrt::Status::internal,
                     std::string(function) + ": unexpected non-standard exception");
  }
}

bool is_known_dtype(marlinrt_dtype t) {
  const int v = static_cast<int>(t);
  return v >= MARLINRT_F16 && v <= MARLINRT_I32;
}

// Converts a C matrix; returns false (with the message set) for an unknown dtype.
bool to_view(const char* function, const char* name, const marlinrt_matrix& m,
             marlinrt::MatrixView& out, marlinrt_status& status) {
  if (!is_known_dtype(m.dtype)) {
    status = fail_with(marlinrt::Status::invalid_argument,
                       std::string(function) + ": " + name + " has unknown dtype value " +
                           std::to_string(static_cast<int>(m.dtype)) +
                           " (expected a marlinrt_dtype, e.g. MARLINRT_BF16)");
    return false;
  }
  out = {m.data, static_cast<marlinrt::DType>(m.dtype), m.rows, m.cols, m.row_stride};
  return true;
}

}  // namespace

extern "C" {

const char* marlinrt_last_error(void) { return last_error_message.c_str(); }

const char* marlinrt_status_name(marlinrt_status status) {
  const int v = static_cast<int>(status);
  if (v < MARLINRT_OK || v > MARLINRT_INTERNAL) return "unknown";
  return marlinrt::status_name(static_cast<marlinrt::Status>(v));
}

const char* marlinrt_version(void) { return marlinrt::version(); }

int marlinrt_kernel_abi_version(void) { return marlinrt::kernel_abi_version(); }

marlinrt_status marlinrt_select_fp4_backend(int compute_capability, marlinrt_backend_choice* out) {
  constexpr const char* kFn = "marlinrt_select_fp4_backend";
  if (out == nullptr) return invalid(kFn, "out is NULL (expected a marlinrt_backend_choice*)");
  return guarded(kFn, [&] {
    if (compute_capability <= 0) {
      return invalid(kFn, "compute capability must be positive, as major*10+minor (e.g. 90)");
    }
    const marlinrt::BackendChoice choice = marlinrt::select_fp4_backend(compute_capability);
    out->backend = static_cast<marlinrt_fp4_backend>(choice.backend);
    out->marlin_allowed = choice.marlin_allowed ? 1 : 0;
    const std::size_t n = std::min(choice.reason.size(), sizeof(out->reason) - 1);
    std::memcpy(out->reason, choice.reason.data(), n);
    out->reason[n] = '\0';
    return MARLINRT_OK;
  });
}

marlinrt_status marlinrt_prepare_nvfp4_linear(const marlinrt_nvfp4_linear_desc* desc,
                                              marlinrt_dtype act, void* stream,
                                              marlinrt_linear_t** out) {
  constexpr const char* kFn = "marlinrt_prepare_nvfp4_linear";
  if (out == nullptr) return invalid(kFn, "out is NULL (expected a marlinrt_linear_t**)");
  *out = nullptr;
  if (desc == nullptr) return invalid(kFn, "desc is NULL (expected a marlinrt_nvfp4_linear_desc*)");
  if (act != MARLINRT_F16 && act != MARLINRT_BF16) {
    return fail_with(marlinrt::Status::invalid_argument,
                     std::string(kFn) + ": activation dtype value " +
                         std::to_string(static_cast<int>(act)) +
                         " is not supported (expected MARLINRT_F16 or MARLINRT_BF16)");
  }
  return guarded(kFn, [&] {
    marlinrt::Nvfp4Linear layer;
    marlinrt_status status = MARLINRT_OK;
    if (!to_view(kFn, "weight", desc->weight, layer.weight, status)) return status;
    if (!to_view(kFn, "weight_scale", desc->weight_scale, layer.weight_scale, status)) {
      return status;
    }
    layer.weight_scale_2 = desc->weight_scale_2;
    layer.bias = desc->bias;
    auto prepared = marlinrt::prepare_nvfp4_linear(layer, static_cast<marlinrt::DType>(act),
                                                   static_cast<marlinrt::Stream>(stream));
    *out = new marlinrt_linear_t{std::move(prepared)};
    return MARLINRT_OK;
  });
}

void marlinrt_linear_destroy(marlinrt_linear_t* linear) {
  // Destruction frees device memory; a failure there must not escape into C.
  try {
    delete linear;
  } catch (...) {
  }
}

marlinrt_status marlinrt_linear(void* stream, const marlinrt_matrix* x,
                                const marlinrt_linear_t* linear, marlinrt_matrix* y) {
  constexpr const char* kFn = "marlinrt_linear";
  if (x == nullptr) return invalid(kFn, "x is NULL (expected a marlinrt_matrix*)");
  if (linear == nullptr) {
    return invalid(kFn, "linear is NULL (expected a layer from marlinrt_prepare_nvfp4_linear)");
  }
  if (y == nullptr) return invalid(kFn, "y is NULL (expected a marlinrt_matrix*)");
  return guarded(kFn, [&] {
    marlinrt::MatrixView xv, yv;
    marlinrt_status status = MARLINRT_OK;
    if (!to_view(kFn, "x", *x, xv, status)) return status;
    if (!to_view(kFn, "y", *y, yv, status)) return status;
    const marlinrt::MutableMatrixView y_out{y->data, yv.dtype, yv.rows, yv.cols, yv.row_stride};
    marlinrt::linear(static_cast<marlinrt::Stream>(stream), xv, linear->prepared, y_out);
    return MARLINRT_OK;
  });
}

marlinrt_status marlinrt_prebuild(const char* key_text) {
  constexpr const char* kFn = "marlinrt_prebuild";
  if (key_text == nullptr) {
    return invalid(kFn,
                   "key_text is NULL (expected a kernel key such as \"repack_weights/sm_90\")");
  }
  return guarded(kFn, [&] {
    marlinrt::prebuild(marlinrt::KernelKey::parse(key_text));
    return MARLINRT_OK;
  });
}

marlinrt_status marlinrt_jit_stats(marlinrt_jit_stats_t* out) {
  constexpr const char* kFn = "marlinrt_jit_stats";
  if (out == nullptr) return invalid(kFn, "out is NULL (expected a marlinrt_jit_stats_t*)");
  return guarded(kFn, [&] {
    const marlinrt::JitStats s = marlinrt::jit_stats();
    *out = {s.memory_hits, s.disk_hits,        s.misses,
            s.compiles,    s.compile_failures, s.compile_seconds};
    return MARLINRT_OK;
  });
}

marlinrt_status marlinrt_reset_jit_stats(void) {
  return guarded("marlinrt_reset_jit_stats", [] {
    marlinrt::reset_jit_stats();
    return MARLINRT_OK;
  });
}

}  // extern "C"
