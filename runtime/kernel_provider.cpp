#include "runtime/kernel_provider.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <fmt/format.h>

#include "cache/cache_config.hpp"
#include "cache/disk_cache.hpp"
#include "runtime/cuda_check.hpp"
#include "runtime/driver.hpp"
#include "runtime/fail.hpp"
#include "runtime/log.hpp"
#include "runtime/specialization.hpp"

namespace marlinrt::detail {
namespace {

std::string_view env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// Per-key state inside one provider. Its mutex makes "compile once" per key while
// different keys compile in parallel.
struct KeyState {
  std::mutex mutex;
  std::optional<Error> failure;              // a compile failure, rethrown on every request
  std::shared_ptr<const std::string> cubin;  // kept once loaded, for other devices
  std::atomic<bool> recorded{false};         // written to the MARLINRT_RECORD log
};

// The unit, options and cache key of one kernel key.
struct PreparedUnit {
  std::string source;
  std::vector<std::string> options;
  CacheKey cache_key;
};

struct Fetched {
  std::string cubin;
  bool compiled = false;
};

bool stream_is_capturing(Stream stream) {
  CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
  const CUresult result = driver().stream_is_capturing(stream, &status);
  // The legacy stream cannot even be queried while another stream captures globally.
  if (result == CUDA_ERROR_STREAM_CAPTURE_IMPLICIT) return true;
  check(result, "asking whether the stream is being captured into a CUDA graph");
  return status != CU_STREAM_CAPTURE_STATUS_NONE;
}

void check_arch_runs_on(const KernelKey& key, const DeviceInfo& device) {
  // A cubin runs on its own major architecture at the same or a higher minor version.
  const int cc = device.compute_capability;
  if (key.arch / 10 != cc / 10 || key.arch > cc) {
    fail(Status::invalid_argument,
         "kernel {} is built for {} but device {} ({}) is sm_{}: expected a key for sm_{}",
         key.to_string(), arch_name(key.arch), device.ordinal, device.name, cc, cc);
  }
}

}  // namespace

CacheKey make_cache_key(const CacheKeyInputs& in) {
  CacheKeyBuilder builder{std::string(in.label)};
  builder.add("kernel", in.label);
  builder.add("kernel abi", std::to_string(in.abi_version));
  builder.add("target", arch_name(in.arch));
  builder.add("nvrtc", in.nvrtc_version);
  // Canonical options never contain whitespace (they are split on it), so a space join
  // is unambiguous.
  builder.add("options", fmt::format("{}", fmt::join(in.options, " ")));
  builder.add("unit", in.unit);
  for (const EmbeddedFile& file : in.templates) {
    builder.add(fmt::format("template {}", file.name), file.contents);
  }
  return builder.build();
}

JitOptions JitOptions::from_env() {
  JitOptions options;
  const std::string_view jit = env("MARLINRT_JIT");
  options.jit_enabled = jit.empty() || parse_switch(jit, "MARLINRT_JIT");
  options.record_path = std::string(env("MARLINRT_RECORD"));
  options.nvrtc = NvrtcUserOptions::from_env();
  return options;
}

KernelSources KernelSources::embedded() {
  const auto files = embedded_templates();
  return {std::vector<EmbeddedFile>(files.begin(), files.end()), &render_unit};
}

struct KernelProvider::Impl {
  Impl(DiskCache& c, JitOptions o, KernelSources s)
      : cache(c), options(std::move(o)), sources(std::move(s)) {}

  DiskCache& cache;
  const JitOptions options;
  const KernelSources sources;

  std::mutex states_mutex;
  std::unordered_map<std::uint64_t, std::unique_ptr<KeyState>> states;

  std::mutex registries_mutex;
  std::array<std::atomic<ModuleRegistry*>, kMaxDevices> registries{};
  std::vector<std::unique_ptr<ModuleRegistry>> owned_registries;

  std::atomic<std::uint64_t> memory_hits{0}, disk_hits{0}, misses{0}, compiles{0},
      compile_failures{0}, compile_nanoseconds{0};

  KeyState& state(std::uint64_t packed) {
    std::lock_guard lock(states_mutex);
    auto& slot = states[packed];
    if (!slot) slot = std::make_unique<KeyState>();
    return *slot;
  }

  ModuleRegistry& registry(const DeviceInfo& device) {
    auto& slot = registries[static_cast<std::size_t>(device.ordinal)];
    if (ModuleRegistry* r = slot.load(std::memory_order_acquire)) [[likely]] {
      return *r;
    }
    std::lock_guard lock(registries_mutex);
    if (ModuleRegistry* r = slot.load(std::memory_order_acquire)) return *r;
    owned_registries.push_back(std::make_unique<ModuleRegistry>(device));
    slot.store(owned_registries.back().get(), std::memory_order_release);
    return *owned_registries.back();
  }

  PreparedUnit prepare(const KernelKey& key) const {
    PreparedUnit unit;
    unit.source = sources.render(key);
    unit.options = nvrtc_options(compile_target(key), options.nvrtc);
    const std::string label = key.to_string();
    unit.cache_key = make_cache_key({.label = label,
                                     .templates = sources.headers,
                                     .unit = unit.source,
                                     .options = unit.options,
                                     .nvrtc_version = nvrtc_version(),
                                     .arch = key.arch,
                                     .abi_version = kKernelAbiVersion});
    return unit;
  }

  // Appends the key text to the MARLINRT_RECORD log, once per key and provider.
  void record_use(const KernelKey& key, KeyState& st) {
    if (options.record_path.empty() || st.recorded.exchange(true)) return;
    const std::string line = key.to_string() + "\n";
    const int fd =
        ::open(options.record_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    bool ok = fd >= 0;
    int error = errno;
    if (ok) {
      // One write() with O_APPEND: lines from concurrent processes do not interleave.
      ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
      error = errno;
      ::close(fd);
    }
    if (!ok) {
      warn_once("MARLINRT_RECORD:" + options.record_path,
                fmt::format("cannot append to the MARLINRT_RECORD file {} ({}); kernel usage is "
                            "not being recorded",
                            options.record_path, std::strerror(error)));
    }
  }

  // Disk, else compile and store. Called with st.mutex held.
  Fetched fetch(const KernelKey& key, KeyState& st, bool strict) {
    if (st.failure) throw *st.failure;
    const PreparedUnit unit = prepare(key);
    if (auto hit = cache.load(unit.cache_key)) {
      disk_hits.fetch_add(1, std::memory_order_relaxed);
      log(LogLevel::debug, "kernel {}: disk cache hit ({})", unit.cache_key.label,
          unit.cache_key.id);
      return {std::move(*hit), false};
    }
    if (strict && !options.jit_enabled) {
      misses.fetch_add(1, std::memory_order_relaxed);
      const CacheConfig& config = cache.config();
      const std::string where =
          config.disabled
              ? fmt::format("{} (disabled by MARLINRT_CACHE_DISABLE)", config.dir.string())
          : cache.usable() ? config.dir.string()
                           : fmt::format("{} ({})", config.dir.string(), cache.unusable_reason());
      fail(Status::jit_disabled,
           "MARLINRT_JIT=off and kernel {} is not in the cache {}; run `marlinrt prebuild {}` "
           "with the same MARLINRT_* settings (or unset MARLINRT_JIT to compile on first use)",
           unit.cache_key.label, where, unit.cache_key.label);
    }
    // Across processes: one compiles, the others wait here and then find its entry.
    const CompileLock lock = cache.lock(unit.cache_key);
    if (auto hit = cache.load(unit.cache_key)) {
      disk_hits.fetch_add(1, std::memory_order_relaxed);
      return {std::move(*hit), false};
    }
    misses.fetch_add(1, std::memory_order_relaxed);
    log(LogLevel::info, "compiling kernel {} (not in the cache)", unit.cache_key.label);
    CompileResult result;
    try {
      result = compile({.source = unit.source,
                        .name = unit.cache_key.label,
                        .headers = sources.headers,
                        .options = unit.options,
                        .evidence = &cache,
                        .cache_key = &unit.cache_key});
    } catch (const Error& e) {
      compile_failures.fetch_add(1, std::memory_order_relaxed);
      if (e.status() == Status::compile_error) st.failure = e;
      throw;
    }
    compiles.fetch_add(1, std::memory_order_relaxed);
    compile_nanoseconds.fetch_add(static_cast<std::uint64_t>(result.seconds * 1e9),
                                  std::memory_order_relaxed);
    log(LogLevel::info, "compiled kernel {} in {:.2f} s ({} bytes of cubin)", unit.cache_key.label,
        result.seconds, result.cubin.size());
    if (!result.log.empty()) {
      log(LogLevel::debug, "NVRTC log for {}:\n{}", unit.cache_key.label, result.log);
    }
    cache.store(unit.cache_key, result.cubin);
    return {std::move(result.cubin), true};
  }

  const LoadedKernel& load_slow(const KernelKey& key, Stream stream, const DeviceInfo& device,
                                ModuleRegistry& reg) {
    check_arch_runs_on(key, device);
    if (stream_is_capturing(stream)) {
      fail(Status::stream_capturing,
           "kernel {} is not loaded on device {} yet and the stream is being captured into a "
           "CUDA graph, where compiling or loading a module is not allowed: run this "
           "configuration once before capturing (and prebuild it to avoid compiling)",
           key.to_string(), device.ordinal);
    }
    KeyState& st = state(key.packed());
    record_use(key, st);
    std::lock_guard lock(st.mutex);
    if (const LoadedKernel* loaded = reg.find(key.packed())) {  // another thread loaded it
      memory_hits.fetch_add(1, std::memory_order_relaxed);
      return *loaded;
    }
    std::shared_ptr<const std::string> cubin = st.cubin;
    if (cubin) {
      memory_hits.fetch_add(1, std::memory_order_relaxed);  // loaded on another device before
    } else {
      cubin = std::make_shared<const std::string>(fetch(key, st, /*strict=*/true).cubin);
    }
    const LoadedKernel& kernel = reg.load(key, *cubin);
    st.cubin = std::move(cubin);
    return kernel;
  }
};

KernelProvider::KernelProvider(DiskCache& cache, JitOptions options, KernelSources sources)
    : impl_(std::make_unique<Impl>(cache, std::move(options), std::move(sources))) {
  if (!impl_->sources.render) {
    fail(Status::invalid_argument, "kernel provider: the sources need a render function");
  }
}

KernelProvider::~KernelProvider() = default;

const LoadedKernel& KernelProvider::get_kernel(const KernelKey& key, Stream stream) {
  key.validate();  // packed() is only injective over valid keys
  const DeviceInfo& device = current_device();
  ModuleRegistry& reg = impl_->registry(device);
  if (const LoadedKernel* loaded = reg.find(key.packed())) [[likely]] {
    impl_->memory_hits.fetch_add(1, std::memory_order_relaxed);
    return *loaded;
  }
  return impl_->load_slow(key, stream, device, reg);
}

std::string KernelProvider::get_cubin(const KernelKey& key) {
  key.validate();
  KeyState& st = impl_->state(key.packed());
  impl_->record_use(key, st);
  std::lock_guard lock(st.mutex);
  if (st.cubin) {
    impl_->memory_hits.fetch_add(1, std::memory_order_relaxed);
    return *st.cubin;
  }
  return impl_->fetch(key, st, /*strict=*/true).cubin;
}

PrebuildOutcome KernelProvider::prebuild(const KernelKey& key) {
  key.validate();
  DiskCache& cache = impl_->cache;
  auto unusable = [&] {
    const CacheConfig& config = cache.config();
    if (config.disabled) return std::string("disabled by MARLINRT_CACHE_DISABLE");
    return cache.unusable_reason();
  };
  if (!cache.usable()) {
    fail(Status::cache_error, "cannot prebuild kernel {}: the kernel cache at {} is not usable: {}",
         key.to_string(), cache.config().dir.string(), unusable());
  }
  KeyState& st = impl_->state(key.packed());
  std::lock_guard lock(st.mutex);
  const Fetched fetched = impl_->fetch(key, st, /*strict=*/false);
  if (!cache.usable()) {
    fail(Status::cache_error,
         "compiled kernel {} but could not store it: the kernel cache at {} became unusable: {}",
         key.to_string(), cache.config().dir.string(), unusable());
  }
  return fetched.compiled ? PrebuildOutcome::compiled : PrebuildOutcome::already_cached;
}

CacheKey KernelProvider::cache_key(const KernelKey& key) const {
  key.validate();
  return impl_->prepare(key).cache_key;
}

JitStats KernelProvider::stats() const {
  JitStats s;
  s.memory_hits = impl_->memory_hits.load(std::memory_order_relaxed);
  s.disk_hits = impl_->disk_hits.load(std::memory_order_relaxed);
  s.misses = impl_->misses.load(std::memory_order_relaxed);
  s.compiles = impl_->compiles.load(std::memory_order_relaxed);
  s.compile_failures = impl_->compile_failures.load(std::memory_order_relaxed);
  s.compile_seconds =
      static_cast<double>(impl_->compile_nanoseconds.load(std::memory_order_relaxed)) * 1e-9;
  return s;
}

void KernelProvider::reset_stats() {
  for (auto* counter : {&impl_->memory_hits, &impl_->disk_hits, &impl_->misses, &impl_->compiles,
                        &impl_->compile_failures, &impl_->compile_nanoseconds}) {
    counter->store(0, std::memory_order_relaxed);
  }
}

DiskCache& KernelProvider::disk_cache() const { return impl_->cache; }
const JitOptions& KernelProvider::options() const { return impl_->options; }

DiskCache& jit_disk_cache() {
  // Never destroyed: kernels may be requested from other static destructors.
  static DiskCache* cache = new DiskCache(CacheConfig::from_env());
  return *cache;
}

KernelProvider& kernel_provider() {
  // Never destroyed: unloading modules while the driver shuts down helps nobody.
  static KernelProvider* provider = new KernelProvider(jit_disk_cache(), JitOptions::from_env());
  return *provider;
}

const LoadedKernel& get_kernel(const KernelKey& key, Stream stream) {
  return kernel_provider().get_kernel(key, stream);
}

CacheKey describe_cache_key(const KernelKey& key) { return kernel_provider().cache_key(key); }

}  // namespace marlinrt::detail
