// include/marlinrt/runtime.hpp on top of the process-wide kernel provider.
#include "marlinrt/runtime.hpp"

#include "cache/disk_cache.hpp"
#include "runtime/kernel_provider.hpp"

namespace marlinrt {

JitStats jit_stats() { return detail::kernel_provider().stats(); }

void reset_jit_stats() { detail::kernel_provider().reset_stats(); }

PrebuildOutcome prebuild(const KernelKey& key) { return detail::kernel_provider().prebuild(key); }

std::string cache_directory() {
  const detail::DiskCache& cache = detail::jit_disk_cache();
  return cache.usable() ? cache.config().dir.string() : std::string();
}

const char* version() noexcept { return MARLINRT_VERSION; }

int kernel_abi_version() noexcept { return detail::kKernelAbiVersion; }

}  // namespace marlinrt
