#include "runtime/jit_benchmark.hpp"

#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include "cache/disk_cache.hpp"
#include "kernel_templates/selftest.cuh"
#include "runtime/cuda_check.hpp"
#include "runtime/device_buffer.hpp"
#include "runtime/driver.hpp"
#include "runtime/fail.hpp"
#include "runtime/kernel_provider.hpp"
#include "runtime/launch.hpp"

namespace marlinrt::detail {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// A private cache directory, removed on destruction.
class TemporaryDirectory {
 public:
  TemporaryDirectory() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = fmt::format("{}/marlinrt-jitbench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(pattern.data()) == nullptr) {
      fail(Status::cache_error, "cannot create a temporary directory from {}", pattern);
    }
    path_ = pattern;
  }
  ~TemporaryDirectory() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Times `batch` calls of `launch_once` per sample; returns the median ns per call.
template <typename LaunchOnce>
double median_launch_ns(std::size_t launches, std::size_t batch, OwnedStream& stream,
                        LaunchOnce&& launch_once) {
  batch = std::max<std::size_t>(1, std::min(batch, launches));
  std::vector<double> samples;
  samples.reserve(launches / batch + 1);
  for (std::size_t done = 0; done < launches; done += batch) {
    const auto start = Clock::now();
    for (std::size_t i = 0; i < batch; ++i) launch_once();
    const double ns = std::chrono::duration<double, std::nano>(Clock::now() - start).count();
    samples.push_back(ns / static_cast<double>(batch));
    // Drain outside the timed region so the launch queue never fills and blocks.
    stream.synchronize();
  }
  std::nth_element(samples.begin(), samples.begin() + samples.size() / 2, samples.end());
  return samples[samples.size() / 2];
}

}  // namespace

JitBenchmarkResult run_jit_benchmark(const JitBenchmarkOptions& options) {
  JitBenchmarkResult result;
  result.gpu = Driver::probe().usable;
  int arch = options.arch;
  if (result.gpu) {
    const DeviceInfo& device = current_device();
    result.device = device.name;
    if (arch == 0) arch = device.compute_capability;
  } else if (arch == 0) {
    fail(Status::invalid_argument,
         "bench jit: no GPU here ({}), so name the target architecture (e.g. sm_90)",
         Driver::probe().reason);
  }
  KernelKey key;
  key.kind = KernelKind::selftest;
  key.arch = arch;
  key.validate();
  result.target = arch_name(arch);
  result.nvrtc_version = nvrtc_version();

  TemporaryDirectory directory;
  CacheConfig config;
  config.dir = directory.path();
  JitOptions jit;  // defaults, plus the user's NVRTC options: they are part of what is timed
  jit.nvrtc = NvrtcUserOptions::from_env();

  // Cold: nothing in memory, nothing on disk.
  {
    DiskCache cache(config);
    if (!cache.usable()) {
      fail(Status::cache_error, "bench jit: the temporary cache {} is not usable: {}",
           config.dir.string(), cache.unusable_reason());
    }
    KernelProvider provider(cache, jit);
    const auto start = Clock::now();
    if (result.gpu) {
      provider.get_kernel(key);
    } else {
      provider.get_cubin(key);
    }
    result.cold_compile_ms = ms_since(start);
    if (provider.stats().compiles != 1) {
      fail(Status::internal, "bench jit: the cold run did not compile (stats say {} compiles)",
           provider.stats().compiles);
    }
  }

  // Warm: a fresh cache object and provider over the same directory.
  DiskCache cache(config);
  KernelProvider provider(cache, jit);
  const auto start = Clock::now();
  const LoadedKernel* kernel = nullptr;
  if (result.gpu) {
    kernel = &provider.get_kernel(key);
  } else {
    provider.get_cubin(key);
  }
  result.warm_disk_hit_ms = ms_since(start);
  if (provider.stats().disk_hits != 1) {
    fail(Status::internal, "bench jit: the warm run missed the disk cache (stats: {} disk hits)",
         provider.stats().disk_hits);
  }

  if (!result.gpu || options.launches == 0) return result;

  // Launch overhead: one tiny block per launch, on a stream of our own.
  constexpr int kElements = 32;
  DeviceBuffer input(kElements * sizeof(unsigned int));
  DeviceBuffer mixed(kElements * sizeof(unsigned int));
  DeviceBuffer scaled(kElements * sizeof(float));
  std::vector<unsigned int> host_input(kElements, 7u);
  input.copy_from_host(host_input.data(), input.size());
  kern::SelftestParams params{};
  params.input = static_cast<const unsigned int*>(input.data());
  params.mixed = static_cast<unsigned int*>(mixed.data());
  params.scaled = static_cast<float*>(scaled.data());
  params.n = kElements;
  params.seed = 1;
  params.scale = 0.5f;
  OwnedStream stream;
  const LaunchDims grid{1, 1, 1}, block{kElements, 1, 1};
  const Driver& d = driver();
  void* arguments[] = {&params};

  auto through_registry = [&] {
    const LoadedKernel& k = provider.get_kernel(key, stream.get());
    launch(k, stream.get(), grid, block, 0, &params);
  };
  auto raw = [&] {
    check(d.launch_kernel(kernel->function, 1, 1, 1, kElements, 1, 1, 0, stream.get(), arguments,
                          nullptr),
          "launching the self-test kernel");
  };
  const std::size_t warmup = std::min<std::size_t>(options.launches, 1000);
  median_launch_ns(warmup, options.batch, stream, through_registry);
  median_launch_ns(warmup, options.batch, stream, raw);
  result.registry_launch_ns =
      median_launch_ns(options.launches, options.batch, stream, through_registry);
  result.raw_launch_ns = median_launch_ns(options.launches, options.batch, stream, raw);
  result.launches = options.launches;
  return result;
}

}  // namespace marlinrt::detail
