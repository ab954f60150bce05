#include "tools/command_cache.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <map>
#include <string>
#include <system_error>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cache/cache_config.hpp"
#include "cache/disk_cache.hpp"
#include "marlinrt/error.hpp"
#include "marlinrt/kernel_key.hpp"
#include "tools/byte_size.hpp"

namespace marlinrt::cli {
namespace {

using detail::CacheEntryInfo;
namespace fs = std::filesystem;

std::int64_t unix_seconds(fs::file_time_type t) {
  const auto sys = std::chrono::file_clock::to_sys(t);
  return std::chrono::duration_cast<std::chrono::seconds>(sys.time_since_epoch()).count();
}

// Local time "2025-01-31 14:05:09" (what an operator reading a listing expects).
std::string local_time(fs::file_time_type t) {
  const std::time_t seconds = static_cast<std::time_t>(unix_seconds(t));
  std::tm tm{};
  localtime_r(&seconds, &tm);
  char text[32];
  if (std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S", &tm) == 0) return "?";
  return text;
}

nlohmann::json entry_json(const CacheEntryInfo& e) {
  nlohmann::json j = {{"id", e.id},
                      {"label", e.label},
                      {"bytes", e.file_bytes},
                      {"path", e.path.string()},
                      {"last_use_unix", unix_seconds(e.last_use)},
                      {"valid", e.valid}};
  if (!e.valid) j["problem"] = e.problem;
  return j;
}

std::uint64_t total_bytes(const std::vector<CacheEntryInfo>& entries) {
  std::uint64_t total = 0;
  for (const auto& e : entries) total += e.file_bytes;
  return total;
}

int list(const detail::DiskCache& cache, bool json) {
  auto entries = cache.list();
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.last_use > b.last_use; });
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : entries) out.push_back(entry_json(e));
    fmt::print("{}\n", out.dump(2));
    return 0;
  }
  if (!entries.empty()) {
    fmt::print("{:<32}  {:<19}  {:>10}  {}\n", "ID", "LAST USE", "SIZE", "KERNEL");
  }
  for (const auto& e : entries) {
    fmt::print("{:<32}  {:<19}  {:>10}  {}{}\n", e.id, local_time(e.last_use),
               format_bytes(e.file_bytes), e.label.empty() ? "?" : e.label,
               e.valid ? "" : fmt::format("  (invalid: {})", e.problem));
  }
  fmt::print("{} entr{}, {} in {}\n", entries.size(), entries.size() == 1 ? "y" : "ies",
             format_bytes(total_bytes(entries)), cache.config().dir.string());
  return 0;
}

std::size_t count_failure_records(const fs::path& dir) {
  std::error_code ec;
  std::size_t n = 0;
  for (fs::directory_iterator it(dir / "failed", ec), end; !ec && it != end; it.increment(ec)) {
    n += it->is_directory(ec) ? 1 : 0;
  }
  return n;
}

int stats(const detail::DiskCache& cache, bool json) {
  const auto entries = cache.list();
  std::size_t invalid = 0;
  std::map<std::string, std::size_t> by_kind, by_arch;
  for (const auto& e : entries) {
    if (!e.valid) {
      ++invalid;
      continue;
    }
    try {
      const KernelKey key = KernelKey::parse(e.label);
      by_kind[e.label.substr(0, e.label.find('/'))]++;
      by_arch[arch_name(key.arch)]++;
    } catch (const Error&) {
      by_kind["other"]++;  // an entry written by a library with other key names
    }
  }
  const auto& config = cache.config();
  const std::uint64_t bytes = total_bytes(entries);
  const std::size_t failures = count_failure_records(config.dir);
  if (json) {
    nlohmann::json out = {{"dir", config.dir.string()},    {"usable", cache.usable()},
                          {"disabled", config.disabled},   {"entries", entries.size()},
                          {"invalid_entries", invalid},    {"bytes", bytes},
                          {"max_bytes", config.max_bytes}, {"failed_compiles", failures},
                          {"entries_by_kind", by_kind},    {"entries_by_arch", by_arch}};
    if (!cache.usable()) out["unusable_reason"] = cache.unusable_reason();
    fmt::print("{}\n", out.dump(2));
    return 0;
  }
  fmt::print("cache directory: {}\n", config.dir.string());
  fmt::print("usable:          {}\n",
             cache.usable() ? "yes" : fmt::format("no ({})", cache.unusable_reason()));
  fmt::print("entries:         {} ({} invalid)\n", entries.size(), invalid);
  fmt::print("bytes:           {} ({})\n", bytes, format_bytes(bytes));
  fmt::print("cap:             {}\n",
             config.max_bytes ? fmt::format("{} ({}, MARLINRT_CACHE_MAX_BYTES)", config.max_bytes,
                                            format_bytes(config.max_bytes))
                              : std::string("none (set MARLINRT_CACHE_MAX_BYTES)"));
  if (config.max_bytes) {
    fmt::print("used:            {:.1f}% of the cap\n", 100.0 * bytes / config.max_bytes);
  }
  std::string kinds, archs;
  for (const auto& [name, n] : by_kind)
    kinds += fmt::format("{}{} {}", kinds.empty() ? "" : ", ", n, name);
  for (const auto& [name, n] : by_arch)
    archs += fmt::format("{}{} {}", archs.empty() ? "" : ", ", n, name);
  fmt::print("by kind:         {}\n", kinds.empty() ? "-" : kinds);
  fmt::print("by arch:         {}\n", archs.empty() ? "-" : archs);
  fmt::print("failed compiles: {}{}\n", failures,
             failures ? fmt::format(" (evidence in {})", (config.dir / "failed").string()) : "");
  return 0;
}

int verify(const detail::DiskCache& cache) {
  const auto entries = cache.verify();
  std::size_t invalid = 0;
  for (const auto& e : entries) {
    if (e.valid) continue;
    ++invalid;
    fmt::print(stderr, "invalid entry {} ({}): {}: {}\n", e.id, e.label.empty() ? "?" : e.label,
               e.path.string(), e.problem);
  }
  fmt::print("verify: {} entr{} checked, {} invalid{}\n", entries.size(),
             entries.size() == 1 ? "y" : "ies", invalid,
             invalid ? " (`marlinrt cache gc` removes them; they are never served)" : "");
  return invalid == 0 ? 0 : 1;
}

}  // namespace

int run_cache(const CacheOptions& options) {
  detail::DiskCache cache(detail::CacheConfig::from_env());
  switch (options.action) {
    case CacheAction::list:
      return list(cache, options.json);
    case CacheAction::stats:
      return stats(cache, options.json);
    case CacheAction::verify:
      return verify(cache);
    case CacheAction::gc: {
      const std::uint64_t freed = cache.gc();
      const auto remaining = cache.list();
      fmt::print("gc: freed {}; {} entr{} ({}) remain in {}\n", format_bytes(freed),
                 remaining.size(), remaining.size() == 1 ? "y" : "ies",
                 format_bytes(total_bytes(remaining)), cache.config().dir.string());
      return 0;
    }
    case CacheAction::clear: {
      const std::uint64_t removed = cache.clear();
      fmt::print("clear: removed {} entr{} from {}\n", removed, removed == 1 ? "y" : "ies",
                 cache.config().dir.string());
      return 0;
    }
  }
  return 2;
}

}  // namespace marlinrt::cli
