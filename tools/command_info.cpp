#include "tools/command_info.hpp"

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cache/cache_config.hpp"
#include "cache/disk_cache.hpp"
#include "marlinrt/backend.hpp"
#include "marlinrt/runtime.hpp"
#include "runtime/nvrtc_compiler.hpp"
#include "tools/byte_size.hpp"
#include "tools/gpu_inventory.hpp"

namespace marlinrt::cli {
namespace {

std::string_view backend_name(Fp4Backend b) {
  switch (b) {
    case Fp4Backend::marlin:
      return "marlin";
    case Fp4Backend::native_fp4:
      return "native_fp4";
    case Fp4Backend::unsupported:
      return "unsupported";
  }
  return "?";
}

std::string env_or(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

// Everything `info` reports, gathered once and printed as text or JSON. A broken
// setting is reported in its section instead of failing the whole command:
// `info` is what one runs to find out what is wrong.
struct CacheReport {
  std::string config_error;  // MARLINRT_CACHE_* could not be parsed
  std::string dir;
  bool disabled = false;
  bool usable = false;
  std::string unusable_reason;
  std::uint64_t max_bytes = 0;
  std::size_t entries = 0;
  std::uint64_t bytes = 0;
};

CacheReport cache_report() {
  CacheReport r;
  try {
    detail::DiskCache cache(detail::CacheConfig::from_env());
    r.dir = cache.config().dir.string();
    r.disabled = cache.config().disabled;
    r.max_bytes = cache.config().max_bytes;
    r.usable = cache.usable();
    if (!r.usable) r.unusable_reason = cache.unusable_reason();
    for (const auto& e : cache.list()) {
      ++r.entries;
      r.bytes += e.file_bytes;
    }
  } catch (const std::exception& e) {
    r.config_error = e.what();
  }
  return r;
}

struct NvrtcReport {
  std::string version;
  std::string options;  // for sm_XX; empty on error
  std::string error;
};

NvrtcReport nvrtc_report() {
  NvrtcReport r;
  try {
    r.version = detail::nvrtc_version();
    const auto options = detail::nvrtc_options(90, detail::NvrtcUserOptions::from_env());
    for (const auto& o : options) r.options += (r.options.empty() ? "" : " ") + o;
  } catch (const std::exception& e) {
    r.error = e.what();
  }
  return r;
}

std::string driver_version_text(int v) {
  return v > 0 ? fmt::format("{}.{}", v / 1000, (v % 1000) / 10) : std::string("unknown");
}

int print_json(const GpuInventory& inv, const CacheReport& cache, const NvrtcReport& nvrtc) {
  nlohmann::json gpus = nlohmann::json::array();
  for (const auto& g : inv.gpus) {
    const BackendChoice b = select_fp4_backend(g.compute_capability);
    gpus.push_back({{"index", g.ordinal},
                    {"name", g.name},
                    {"compute_capability", g.compute_capability},
                    {"arch", fmt::format("sm_{}", g.compute_capability)},
                    {"sm_count", g.sm_count},
                    {"memory_bytes", g.memory_bytes},
                    {"backend", backend_name(b.backend)},
                    {"marlin_allowed", b.marlin_allowed},
                    {"backend_reason", b.reason}});
  }
  const JitStats s = jit_stats();
  nlohmann::json cache_json = {{"dir", cache.dir},         {"disabled", cache.disabled},
                               {"usable", cache.usable},   {"max_bytes", cache.max_bytes},
                               {"entries", cache.entries}, {"bytes", cache.bytes}};
  if (!cache.unusable_reason.empty()) cache_json["unusable_reason"] = cache.unusable_reason;
  if (!cache.config_error.empty()) cache_json["error"] = cache.config_error;
  nlohmann::json nvrtc_json = {{"version", nvrtc.version}, {"options_sm_90", nvrtc.options}};
  if (!nvrtc.error.empty()) nvrtc_json["error"] = nvrtc.error;
  const nlohmann::json doc = {
      {"version", version()},
      {"kernel_abi_version", kernel_abi_version()},
      {"driver",
       {{"usable", inv.driver_usable},
        {"reason", inv.driver_reason},
        {"version", inv.driver_version}}},
      {"gpus", gpus},
      {"nvrtc", nvrtc_json},
      {"cache", cache_json},
      {"jit", {{"mode", env_or("MARLINRT_JIT", "on")}, {"record", env_or("MARLINRT_RECORD", "")}}},
      {"counters",
       {{"memory_hits", s.memory_hits},
        {"disk_hits", s.disk_hits},
        {"misses", s.misses},
        {"compiles", s.compiles},
        {"compile_failures", s.compile_failures},
        {"compile_seconds", s.compile_seconds}}}};
  fmt::print("{}\n", doc.dump(2));
  return 0;
}

int print_text(const GpuInventory& inv, const CacheReport& cache, const NvrtcReport& nvrtc) {
  fmt::print("marlinrt {} (kernel ABI {})\n", version(), kernel_abi_version());
  if (inv.driver_usable) {
    fmt::print("CUDA driver:   {} ({})\n", driver_version_text(inv.driver_version),
               inv.driver_reason);
  } else {
    fmt::print("CUDA driver:   not usable: {}\n", inv.driver_reason);
    fmt::print("               (GPU calls will fail; prebuild, the cache and NVRTC still work)\n");
  }
  if (inv.gpus.empty()) fmt::print("GPUs:          none\n");
  for (const auto& g : inv.gpus) {
    const BackendChoice b = select_fp4_backend(g.compute_capability);
    fmt::print("GPU {}:         {}, sm_{}, {} SMs, {}\n", g.ordinal, g.name, g.compute_capability,
               g.sm_count, format_bytes(g.memory_bytes));
    fmt::print("               backend: {} ({})\n", backend_name(b.backend), b.reason);
  }
  if (nvrtc.error.empty()) {
    fmt::print("NVRTC:         {}\n", nvrtc.version);
    fmt::print("NVRTC options: {} (for sm_90)\n", nvrtc.options);
  } else {
    fmt::print("NVRTC:         {}\n", nvrtc.version.empty() ? "unavailable" : nvrtc.version);
    fmt::print("NVRTC options: error: {}\n", nvrtc.error);
  }
  if (!cache.config_error.empty()) {
    fmt::print("Kernel cache:  configuration error: {}\n", cache.config_error);
  } else {
    fmt::print("Kernel cache:  {}\n", cache.dir);
    fmt::print("               usable: {}\n",
               cache.usable
                   ? std::string("yes")
                   : fmt::format("no ({})", cache.disabled ? "MARLINRT_CACHE_DISABLE is set"
                                                           : cache.unusable_reason));
    fmt::print("               {} entr{}, {}; cap {}\n", cache.entries,
               cache.entries == 1 ? "y" : "ies", format_bytes(cache.bytes),
               cache.max_bytes ? format_bytes(cache.max_bytes) : std::string("none"));
  }
  fmt::print("JIT:           MARLINRT_JIT={}, usage log (MARLINRT_RECORD): {}\n",
             env_or("MARLINRT_JIT", "on"), env_or("MARLINRT_RECORD", "off"));
  const JitStats s = jit_stats();
  fmt::print(
      "Counters:      {} memory hits, {} disk hits, {} misses, {} compiles ({:.2f} s), "
      "{} failed (this process)\n",
      s.memory_hits, s.disk_hits, s.misses, s.compiles, s.compile_seconds, s.compile_failures);
  return 0;
}

}  // namespace

int run_info(const InfoOptions& options) {
  const GpuInventory& inv = gpu_inventory();
  const CacheReport cache = cache_report();
  const NvrtcReport nvrtc = nvrtc_report();
  return options.json ? print_json(inv, cache, nvrtc) : print_text(inv, cache, nvrtc);
}

}  // namespace marlinrt::cli
