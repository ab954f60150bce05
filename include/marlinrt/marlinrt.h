/* marlinrt C ABI: NVFP4 linear layers on GPUs without FP4 tensor cores, from C
 * or any language with a C foreign-function interface.
 *
 * Conventions:
 *  - Every function returns a marlinrt_status (0 = MARLINRT_OK) unless it says
 *    otherwise, and never lets an exception or a crash escape for bad input.
 *  - On failure, marlinrt_last_error() describes what was wrong and what was
 *    expected. The message is per thread and stays valid until the next failing
 *    call on the same thread; successful calls leave it unchanged.
 *  - Status values equal those of the C++ enum marlinrt::Status.
 *  - Pointers named `out` are written only on success (a failed prepare sets
 *    *out to NULL when `out` itself is not NULL).
 *
 * C99 or newer, or C++. Link with -lmarlinrt (CMake: marlinrt::marlinrt).
 */
#ifndef MARLINRT_MARLINRT_H_
#define MARLINRT_MARLINRT_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MARLINRT_C_API __attribute__((visibility("default")))
#else
#define MARLINRT_C_API
#endif

/* Result of every call; the same numbers as marlinrt::Status. */
typedef enum marlinrt_status {
  MARLINRT_OK = 0,
  MARLINRT_INVALID_ARGUMENT = 1, /* a shape, dtype, pointer, key or option is wrong */
  MARLINRT_UNSUPPORTED = 2,      /* valid request this build/GPU cannot serve */
  MARLINRT_NO_DRIVER = 3,        /* libcuda.so.1 could not be loaded */
  MARLINRT_NO_DEVICE = 4,        /* driver present but no (such) GPU */
  MARLINRT_CUDA_ERROR = 5,       /* a driver call failed */
  MARLINRT_COMPILE_ERROR = 6,    /* NVRTC rejected a kernel */
  MARLINRT_JIT_DISABLED = 7,     /* MARLINRT_JIT=off and the kernel is not cached */
  MARLINRT_CACHE_ERROR = 8,      /* the kernel cache cannot be used as asked */
  MARLINRT_STREAM_CAPTURING = 9, /* would compile/load while a CUDA graph is captured */
  MARLINRT_INTERNAL = 10         /* a bug in marlinrt (or out of host memory) */
} marlinrt_status;

/* Element types; the same numbers as marlinrt::DType. */
typedef enum marlinrt_dtype {
  MARLINRT_F16 = 0,
  MARLINRT_BF16 = 1,
  MARLINRT_F32 = 2,
  MARLINRT_U8 = 3,   /* packed E2M1 pairs: element 2i in the low nibble */
  MARLINRT_E4M3 = 4, /* float8_e4m3fn */
  MARLINRT_I32 = 5
} marlinrt_dtype;

/* A row-major matrix of device memory (rank 1 or 2). Does not own `data`.
 * row_stride is in elements; 0 means contiguous (= cols). Inputs are only
 * read through `data`. */
typedef struct marlinrt_matrix {
  void* data;
  marlinrt_dtype dtype;
  int64_t rows;
  int64_t cols;
  int64_t row_stride;
} marlinrt_matrix;

/* One ModelOpt NVFP4 linear layer with logical weight [N, K], on the device:
 *   weight          MARLINRT_U8   [N, K/2]
 *   weight_scale    MARLINRT_E4M3 [N, K/16]
 *   weight_scale_2  the fp32 global scale (host value)
 *   bias            optional device pointer, activation dtype, [N] (or NULL) */
typedef struct marlinrt_nvfp4_linear_desc {
  marlinrt_matrix weight;
  marlinrt_matrix weight_scale;
  float weight_scale_2;
  const void* bias;
} marlinrt_nvfp4_linear_desc;

/* A prepared layer: weights in the kernel's layout, owning device memory. */
typedef struct marlinrt_linear_s marlinrt_linear_t;

/* JIT counters of this process (see marlinrt::JitStats). */
typedef struct marlinrt_jit_stats_t {
  uint64_t memory_hits;
  uint64_t disk_hits;
  uint64_t misses;
  uint64_t compiles;
  uint64_t compile_failures;
  double compile_seconds;
} marlinrt_jit_stats_t;

typedef enum marlinrt_fp4_backend {
  MARLINRT_BACKEND_MARLIN = 0,     /* SM80..SM9x: this library's W4A16 path */
  MARLINRT_BACKEND_NATIVE_FP4 = 1, /* SM100+: native FP4 exists; marlin still allowed */
  MARLINRT_BACKEND_UNSUPPORTED = 2 /* below SM80 */
} marlinrt_fp4_backend;

typedef struct marlinrt_backend_choice {
  marlinrt_fp4_backend backend;
  int marlin_allowed; /* 1 when marlinrt can run on this GPU at all */
  char reason[256];   /* one sentence, NUL-terminated (truncated if longer) */
} marlinrt_backend_choice;

/* The message of the most recent failing call on this thread ("" if none).
 * Never NULL. */
MARLINRT_C_API const char* marlinrt_last_error(void);

/* A short name for a status value, e.g. "invalid_argument". Never NULL. */
MARLINRT_C_API const char* marlinrt_status_name(marlinrt_status status);

/* Library version, e.g. "0.1.0". Never NULL. */
MARLINRT_C_API const char* marlinrt_version(void);

/* The kernel ABI version that enters every cache key. */
MARLINRT_C_API int marlinrt_kernel_abi_version(void);

/* Which FP4 path suits a GPU of compute capability major*10+minor (90 = H100). */
MARLINRT_C_API marlinrt_status marlinrt_select_fp4_backend(int compute_capability,
                                                           marlinrt_backend_choice* out);

/* Repacks and validates `desc` on `stream` (a CUstream / cudaStream_t, NULL for
 * the default stream) for activations of type `act` (MARLINRT_F16 or
 * MARLINRT_BF16). On success *out owns the prepared layer; free it with
 * marlinrt_linear_destroy. */
MARLINRT_C_API marlinrt_status marlinrt_prepare_nvfp4_linear(const marlinrt_nvfp4_linear_desc* desc,
                                                             marlinrt_dtype act, void* stream,
                                                             marlinrt_linear_t** out);

/* Frees a prepared layer. NULL is allowed and does nothing. The caller must make
 * sure no launch using it is still running. */
MARLINRT_C_API void marlinrt_linear_destroy(marlinrt_linear_t* linear);

/* y[M, N] = x[M, K] * W^T (+ bias), enqueued on `stream`. x and y are device
 * matrices in the prepared activation dtype. */
MARLINRT_C_API marlinrt_status marlinrt_linear(void* stream, const marlinrt_matrix* x,
                                               const marlinrt_linear_t* linear, marlinrt_matrix* y);

/* Makes sure the kernel named by `key_text` (e.g. "repack_weights/sm_90", see
 * `marlinrt explain`) is in the disk cache, compiling it if needed. Needs no GPU. */
MARLINRT_C_API marlinrt_status marlinrt_prebuild(const char* key_text);

/* Copies this process's JIT counters into *out. */
MARLINRT_C_API marlinrt_status marlinrt_jit_stats(marlinrt_jit_stats_t* out);

/* Resets this process's JIT counters to zero. */
MARLINRT_C_API marlinrt_status marlinrt_reset_jit_stats(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* MARLINRT_MARLINRT_H_ */
