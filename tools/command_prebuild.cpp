#include "tools/command_prebuild.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>
#include <unordered_set>

#include <fmt/format.h>

#include "runtime/kernel_provider.hpp"  // first: <cuda.h> before marlinrt/runtime.hpp

#include "cache/disk_cache.hpp"
#include "marlinrt/kernel_key.hpp"
#include "marlinrt/runtime.hpp"
#include "runtime/dense_dispatch.hpp"
#include "runtime/fail.hpp"
#include "tools/progress_bar.hpp"
#include "tools/shapes_file.hpp"
#include "tools/target_archs.hpp"
#include "tools/usage_log.hpp"

namespace marlinrt::cli {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Keys in first-seen order without duplicates.
class KeyList {
 public:
  void add(const KernelKey& key) {
    if (seen_.insert(key.packed()).second) keys_.push_back(key);
  }
  const std::vector<KernelKey>& keys() const { return keys_; }

 private:
  std::vector<KernelKey> keys_;
  std::unordered_set<std::uint64_t> seen_;
};

// Every key the options ask for. Validates everything before anything is compiled.
std::vector<KernelKey> collect_keys(const PrebuildOptions& options) {
  KeyList list;
  const bool needs_archs = !options.shapes_file.empty() ||
                           std::any_of(options.keys.begin(), options.keys.end(),
                                       [](const std::string& k) { return !key_text_has_arch(k); });
  std::vector<int> archs;
  if (needs_archs) {
    archs = resolve_target_archs(options.archs);
  } else if (!options.archs.empty()) {
    resolve_target_archs(options.archs);  // still reject a bad --arch
  }
  for (const auto& text : options.keys) {
    if (key_text_has_arch(text)) {
      list.add(KernelKey::parse(text));
    } else {
      for (int arch : archs) list.add(KernelKey::parse(text + "/" + arch_name(arch)));
    }
  }
  if (!options.shapes_file.empty()) {
    const ShapesFile shapes = read_shapes_file(options.shapes_file);
    for (int arch : archs) {
      for (const auto& key : detail::prepare_keys(arch)) list.add(key);
      const int sm_count = sm_count_for_arch(arch, options.sm_count);
      for (const auto& layer : shapes.layers) {
        try {
          for (const auto& key : detail::dense_keys_for_shape(layer.n, layer.k, shapes.dtype, arch,
                                                              sm_count, shapes.max_m)) {
            list.add(key);
          }
        } catch (const Error& e) {
          detail::fail(e.status(), "shapes file {}: layer '{}' (n={}, k={}): {}",
                       options.shapes_file, layer.name, layer.n, layer.k, e.what());
        }
      }
    }
  }
  if (!options.replay_file.empty()) {
    for (const auto& key : read_usage_log(options.replay_file)) list.add(key);
  }
  return list.keys();
}

std::string arch_list(const std::vector<KernelKey>& keys) {
  std::vector<int> archs;
  for (const auto& k : keys) {
    if (std::find(archs.begin(), archs.end(), k.arch) == archs.end()) archs.push_back(k.arch);
  }
  std::sort(archs.begin(), archs.end());
  std::string out;
  for (int a : archs) out += (out.empty() ? "" : ",") + arch_name(a);
  return out;
}

}  // namespace

int run_prebuild(const PrebuildOptions& options) {
  const std::vector<KernelKey> keys = collect_keys(options);
  if (options.dry_run) {
    for (const auto& key : keys) fmt::print("{}\n", key.to_string());
    return 0;
  }
  const detail::DiskCache& cache = detail::jit_disk_cache();
  const std::string cache_dir = cache.config().dir.string();
  if (!cache.usable()) {
    detail::fail(
        Status::cache_error,
        "the kernel cache at {} cannot be used ({}), so prebuild has nowhere to store "
        "kernels; `marlinrt info` says more",
        cache_dir,
        cache.config().disabled ? "MARLINRT_CACHE_DISABLE is set" : cache.unusable_reason());
  }
  if (keys.empty()) {
    fmt::print("prebuild: the usage log lists no kernels; nothing to do\n");
    return 0;
  }

  const unsigned hardware = std::max(1u, std::thread::hardware_concurrency());
  const std::size_t workers = std::min<std::size_t>(
      keys.size(), options.jobs > 0 ? static_cast<std::size_t>(options.jobs) : hardware);
  ProgressBar bar(keys.size(), stdout_is_terminal());
  std::atomic<std::size_t> next{0}, done{0}, compiled{0}, cached{0}, failed{0};
  const auto start = Clock::now();

  auto status_text = [&] {
    return fmt::format("{} compiled, {} cached, {} failed", compiled.load(), cached.load(),
                       failed.load());
  };
  auto work = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < keys.size();) {
      const KernelKey& key = keys[i];
      const auto key_start = Clock::now();
      std::string line;
      try {
        const PrebuildOutcome outcome = prebuild(key);
        if (outcome == PrebuildOutcome::compiled) {
          ++compiled;
          line = fmt::format("compiled       {}  ({:.2f} s)", key.to_string(),
                             seconds_since(key_start));
        } else {
          ++cached;
          line = fmt::format("already cached {}", key.to_string());
        }
      } catch (const std::exception& e) {
        ++failed;
        bar.note(fmt::format("marlinrt: prebuild of {} failed: {}", key.to_string(), e.what()));
      }
      if (options.verbose && !line.empty()) bar.note(line, stdout);
      bar.update(++done, status_text());
    }
  };
  std::vector<std::thread> threads;
  for (std::size_t t = 1; t < workers; ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  bar.finish();

  fmt::print(
      "prebuild: {} kernel{} for {}: {} compiled, {} already cached, {} failed in {:.2f} s "
      "(cache: {})\n",
      keys.size(), keys.size() == 1 ? "" : "s", arch_list(keys), compiled.load(), cached.load(),
      failed.load(), seconds_since(start), cache_dir);
  return failed.load() == 0 ? 0 : 1;
}

}  // namespace marlinrt::cli
