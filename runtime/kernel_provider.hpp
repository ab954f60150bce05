// The JIT: a kernel key -> a function loaded on the current device.
//
//   module registry (per device, lock-free)          -> memory hit
//   disk cache (hash of every compile input)          -> disk hit, then load
//   NVRTC compile, store (one compile per key, in the process and across processes)
//
// Failures are remembered per key (a second request rethrows without recompiling);
// MARLINRT_JIT=off turns a miss into Error(jit_disabled); MARLINRT_RECORD=path appends
// each distinct key text once per process, for `marlinrt prebuild --replay path`.
#pragma once

#include <cuda.h>

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "cache/cache_key.hpp"
#include "marlinrt/kernel_key.hpp"
#include "marlinrt/runtime.hpp"
#include "runtime/embedded_templates.hpp"
#include "runtime/module_registry.hpp"
#include "runtime/nvrtc_compiler.hpp"

// Streams pass straight to the driver.
static_assert(std::is_same_v<marlinrt::Stream, CUstream>, "marlinrt::Stream must be CUstream");

namespace marlinrt::detail {

class DiskCache;

// Enters every cache key; bump it whenever the calling convention of any kernel (its
// params struct, launch shape or meaning of a template argument) changes in a way the
// template bytes alone would not show. kernel_abi_version() returns it.
inline constexpr int kKernelAbiVersion = 1;

// Everything a cubin depends on. The cache key is a function of exactly these.
struct CacheKeyInputs {
  std::string_view label;                   // the kernel key text
  std::span<const EmbeddedFile> templates;  // names and bytes of every header
  std::string_view unit;                    // the rendered translation unit
  std::span<const std::string> options;     // the canonical NVRTC option list
  std::string_view nvrtc_version;           // e.g. "13.0"
  int arch = 0;                             // 90 -> "sm_90"
  int abi_version = kKernelAbiVersion;
};
CacheKey make_cache_key(const CacheKeyInputs& inputs);

// How a provider behaves; from_env() reads MARLINRT_JIT, MARLINRT_RECORD,
// MARLINRT_LINEINFO and MARLINRT_NVRTC_OPTIONS (junk values throw invalid_argument).
struct JitOptions {
  bool jit_enabled = true;  // MARLINRT_JIT=off: a cache miss is an error
  std::string record_path;  // MARLINRT_RECORD: usage log, one key text per line
  NvrtcUserOptions nvrtc;
  static JitOptions from_env();
};

// What a provider compiles from: the embedded templates and render_unit(), unless a test
// substitutes its own.
struct KernelSources {
  std::vector<EmbeddedFile> headers;
  std::function<std::string(const KernelKey&)> render;
  static KernelSources embedded();
};

class KernelProvider {
 public:
  // `cache` must outlive the provider.
  KernelProvider(DiskCache& cache, JitOptions options,
                 KernelSources sources = KernelSources::embedded());
  ~KernelProvider();  // unloads the modules it loaded
  KernelProvider(const KernelProvider&) = delete;
  KernelProvider& operator=(const KernelProvider&) = delete;

  // The kernel for `key` on the current device (see current_device()), loading,
  // reading from disk or compiling it on first use. A first use while `stream` is being
  // captured into a CUDA graph throws Error(stream_capturing); a kernel already loaded
  // is returned during capture too.
  const LoadedKernel& get_kernel(const KernelKey& key, Stream stream = nullptr);

  // The cubin for `key` (disk or compile; strict mode applies). Needs no GPU.
  std::string get_cubin(const KernelKey& key);

  // Makes sure the cubin is on disk, compiling it if needed (strict mode does not apply).
  // Needs no GPU. Throws Error(cache_error) when the disk cache cannot be used.
  PrebuildOutcome prebuild(const KernelKey& key);

  // The cache key `key` compiles under with this provider's sources and options.
  CacheKey cache_key(const KernelKey& key) const;

  JitStats stats() const;
  void reset_stats();
  DiskCache& disk_cache() const;
  const JitOptions& options() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The process-wide disk cache (CacheConfig::from_env()) and provider (JitOptions::from_env()).
DiskCache& jit_disk_cache();
KernelProvider& kernel_provider();

// kernel_provider().get_kernel(key, stream): what the dense and MoE paths call.
const LoadedKernel& get_kernel(const KernelKey& key, Stream stream = nullptr);

// The parts and id of `key`'s cache entry (for `marlinrt explain`).
CacheKey describe_cache_key(const KernelKey& key);

}  // namespace marlinrt::detail
