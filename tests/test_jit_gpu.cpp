#include <catch2/catch.hpp>

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "cache/cache_config.hpp"
#include "cache/disk_cache.hpp"
#include "kernel_templates/selftest.cuh"
#include "marlinrt/error.hpp"
#include "runtime/cuda_check.hpp"
#include "runtime/device_buffer.hpp"
#include "runtime/driver.hpp"
#include "runtime/jit_benchmark.hpp"
#include "runtime/kernel_provider.hpp"
#include "runtime/launch.hpp"
#include "tests/gpu_guard.hpp"

using namespace marlinrt;
using namespace marlinrt::detail;
namespace fs = std::filesystem;

namespace {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "marlinrt-jit-gpu-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

CacheConfig cache_config(const fs::path& dir) {
  CacheConfig config;
  config.dir = dir;
  return config;
}

JitOptions jit_options(bool enabled = true) {
  JitOptions options;
  options.jit_enabled = enabled;
  return options;
}

KernelKey selftest_key() {
  KernelKey k;
  k.kind = KernelKind::selftest;
  k.arch = current_device().compute_capability;
  return k;
}

// Runs the self-test kernel over n words and checks every output against the host.
void run_and_check_selftest(const LoadedKernel& kernel, Stream stream, int n) {
  std::vector<unsigned int> input(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) input[static_cast<std::size_t>(i)] = 2654435761u * (i + 11u);
  DeviceBuffer d_input(input.size() * sizeof(unsigned int));
  DeviceBuffer d_mixed(input.size() * sizeof(unsigned int));
  DeviceBuffer d_scaled(input.size() * sizeof(float));
  d_input.copy_from_host(input.data(), d_input.size());

  kern::SelftestParams params{};
  params.input = static_cast<const unsigned int*>(d_input.data());
  params.mixed = static_cast<unsigned int*>(d_mixed.data());
  params.scaled = static_cast<float*>(d_scaled.data());
  params.n = n;
  params.seed = 0xc0ffeeu;
  params.scale = 0.125f;
  const unsigned threads = 128;
  launch(kernel, stream, {(static_cast<unsigned>(n) + threads - 1) / threads, 1, 1},
         {threads, 1, 1}, 0, &params);
  check(driver().stream_synchronize(stream), "waiting for the test");

  std::vector<unsigned int> mixed(input.size());
  std::vector<float> scaled(input.size());
  d_mixed.copy_to_host(mixed.data(), d_mixed.size());
  d_scaled.copy_to_host(scaled.data(), d_scaled.size());
  int wrong = 0;
  for (int i = 0; i < n; ++i) {
    const auto u = static_cast<std::size_t>(i);
    const unsigned int expect =
        kern::selftest_mix(input[u], static_cast<unsigned int>(i), params.seed);
    wrong += mixed[u] != expect;
    wrong += scaled[u] != kern::selftest_scale(expect, params.scale);
  }
  CHECK(wrong == 0);
}

}  // namespace

TEST_CASE("the current device is described", "[jit][gpu]") {
  MARLINRT_REQUIRE_GPU();
  const DeviceInfo& device = current_device();
  CHECK(&device == &current_device());
  CHECK(&device == &device_info(device.ordinal));
  CHECK(device.compute_capability >= 50);
  CHECK(device.sm_count > 0);
  CHECK(device.max_shared_per_block_optin >= 48 * 1024);
  CHECK(device.total_memory > 0);
  CHECK_FALSE(device.name.empty());
  CUcontext current = nullptr;
  check(driver().ctx_get_current(&current), "reading the current context");
  CHECK(current == device.context);
  CHECK_THROWS_AS(device_info(Driver::probe().device_count), Error);
}

TEST_CASE("the self-test kernel compiles, caches, loads and computes exactly", "[jit][gpu]") {
  MARLINRT_REQUIRE_GPU();
  TempDir dir;
  DiskCache cache(cache_config(dir.path()));
  KernelProvider provider(cache, jit_options());
  const KernelKey key = selftest_key();

  const LoadedKernel& kernel = provider.get_kernel(key);
  CHECK(kernel.function != nullptr);
  CHECK(kernel.key == key);
  CHECK(kernel.device_ordinal == current_device().ordinal);
  CHECK(kernel.max_dynamic_shared_bytes > 0);
  CHECK(provider.stats().compiles == 1);
  CHECK(provider.stats().misses == 1);
  CHECK(cache.load(provider.cache_key(key)).has_value());

  CHECK(&provider.get_kernel(key) == &kernel);  // the registry, no string work
  CHECK(provider.stats().memory_hits == 1);

  run_and_check_selftest(kernel, nullptr, 1000);
  OwnedStream stream;
  run_and_check_selftest(provider.get_kernel(key, stream.get()), stream.get(), 4099);

  try {
    launch(kernel, nullptr, {1, 1, 1}, {32, 1, 1},
           static_cast<unsigned>(kernel.max_dynamic_shared_bytes) + 1, nullptr);
    FAIL("launched with more shared memory than the device allows");
  } catch (const Error& e) {
    CHECK(e.status() == Status::invalid_argument);
  }
}

TEST_CASE("a second provider (a new process) hits the disk cache; strict mode then works",
          "[jit][gpu]") {
  MARLINRT_REQUIRE_GPU();
  TempDir dir;
  const KernelKey key = selftest_key();
  {
    DiskCache cache(cache_config(dir.path()));
    KernelProvider first(cache, jit_options());
    first.get_kernel(key);
    CHECK(first.stats().compiles == 1);
  }
  DiskCache cache(cache_config(dir.path()));
  KernelProvider second(cache, jit_options(false));  // strict: a miss would throw
  const LoadedKernel& kernel = second.get_kernel(key);
  const JitStats s = second.stats();
  CHECK(s.disk_hits == 1);
  CHECK(s.misses == 0);
  CHECK(s.compiles == 0);
  run_and_check_selftest(kernel, nullptr, 257);
}

TEST_CASE("no compile or load while the stream is captured; loaded kernels still launch",
          "[jit][gpu]") {
  MARLINRT_REQUIRE_GPU();
  TempDir dir;
  DiskCache cache(cache_config(dir.path()));
  KernelProvider loaded_first(cache, jit_options());
  KernelProvider not_loaded(cache, jit_options());
  const KernelKey key = selftest_key();
  const LoadedKernel& kernel = loaded_first.get_kernel(key);

  OwnedStream stream;
  const Driver& d = driver();
  check(d.stream_begin_capture(stream.get(), CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
        "beginning a capture");
  bool refused = false;
  try {
    not_loaded.get_kernel(key, stream.get());
  } catch (const Error& e) {
    refused = e.status() == Status::stream_capturing;
    CHECK_THAT(e.what(), Catch::Contains(key.to_string()));
  }
  // Already loaded: fine during capture.
  const LoadedKernel* during = nullptr;
  try {
    during = &loaded_first.get_kernel(key, stream.get());
  } catch (...) {
  }
  CUgraph graph = nullptr;
  check(d.stream_end_capture(stream.get(), &graph), "ending the capture");
  if (graph != nullptr) d.graph_destroy(graph);
  CHECK(refused);
  CHECK(during == &kernel);
  CHECK(not_loaded.stats().compiles == 0);
  CHECK(not_loaded.stats().misses == 0);
}

TEST_CASE("a key for another architecture is refused on this device", "[jit][gpu]") {
  MARLINRT_REQUIRE_GPU();
  TempDir dir;
  DiskCache cache(cache_config(dir.path()));
  KernelProvider provider(cache, jit_options());
  KernelKey key = selftest_key();
  key.arch = key.arch >= 90 ? 80 : 90;  // another major generation
  try {
    provider.get_kernel(key);
    FAIL("loaded a kernel built for another architecture");
  } catch (const Error& e) {
    CHECK(e.status() == Status::invalid_argument);
    CHECK_THAT(e.what(), Catch::Contains(key.to_string()));
  }
}

TEST_CASE("bench jit measures launch overhead through the registry and raw", "[jit][gpu]") {
  MARLINRT_REQUIRE_GPU();
  JitBenchmarkOptions options;
  options.launches = 2000;
  const JitBenchmarkResult r = run_jit_benchmark(options);
  CHECK(r.gpu);
  CHECK_FALSE(r.device.empty());
  CHECK(r.launches == 2000);
  CHECK(r.raw_launch_ns > 0.0);
  CHECK(r.registry_launch_ns > 0.0);
  CHECK(r.warm_disk_hit_ms < r.cold_compile_ms);
}
