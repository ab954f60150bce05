// Runtime controls: the JIT counters operators use to prove that a prebuild
// covered everything, and compiling a key ahead of time without a GPU.
#pragma once

#include <cstdint>
#include <string>

#include "marlinrt/kernel_key.hpp"

struct CUstream_st;  // CUDA's opaque stream type (cuda.h), declared here without cuda.h

namespace marlinrt {

// CUDA's stream handle: the same type as CUstream and cudaStream_t.
using Stream = ::CUstream_st*;

struct JitStats {
  std::uint64_t memory_hits = 0;  // function already loaded in this process
  std::uint64_t disk_hits = 0;    // cubin read from the disk cache
  std::uint64_t misses = 0;       // not in memory nor on disk
  std::uint64_t compiles = 0;     // NVRTC compiles that succeeded
  std::uint64_t compile_failures = 0;
  double compile_seconds = 0.0;  // wall time spent in NVRTC
};

JitStats jit_stats();
void reset_jit_stats();

enum class PrebuildOutcome { compiled, already_cached };

// Makes sure the cubin for `key` is in the disk cache (compiling it with NVRTC
// if needed). Needs no GPU and no driver. Throws Error on compile failure or
// when the cache is disabled/unusable.
PrebuildOutcome prebuild(const KernelKey& key);

// The cache directory in use (resolved from MARLINRT_CACHE_DIR etc.), or an
// empty string when the cache is disabled or degraded to memory.
std::string cache_directory();

// Library version ("0.1.0") and the kernel ABI version that enters every key.
const char* version() noexcept;
int kernel_abi_version() noexcept;

}  // namespace marlinrt
