#include "tools/command_explain.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "cache/cache_entry_format.hpp"
#include "cache/cache_key.hpp"
#include "cache/disk_cache.hpp"
#include "marlinrt/kernel_key.hpp"
#include "runtime/fail.hpp"
#include "runtime/kernel_provider.hpp"
#include "tools/target_archs.hpp"

namespace marlinrt::cli {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// What is on disk for one entry file, checked without touching it (a lookup
// would also stamp its last use or remove it when damaged).
struct EntryCheck {
  bool exists = false;
  std::string problem;  // empty: valid for this key
  std::string stored_text;
};

EntryCheck check_entry(const fs::path& path, const detail::CacheKey& key) {
  EntryCheck check;
  std::error_code ec;
  if (!fs::exists(path, ec)) return check;
  check.exists = true;
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  if (!in && !in.eof()) {
    check.problem = "cannot be read";
    return check;
  }
  const std::string file = bytes.str();
  detail::EntryHeader header;
  check.problem = detail::parse_entry_header(file, header);
  if (!check.problem.empty()) return check;
  check.stored_text = header.text;
  if (header.text != key.text) {
    check.problem =
        "its stored key text differs from this key's (a hash collision or a planted file)";
    return check;
  }
  check.problem = detail::check_entry_payload(file, header);
  return check;
}

// The stored key text of another entry with the same label, if any: the usual
// reason for a miss is that one input (library, NVRTC, options) changed.
std::optional<std::pair<std::string, std::string>> same_kernel_other_key(
    const detail::DiskCache& cache, const detail::CacheKey& key) {
  for (const auto& entry : cache.list()) {
    if (entry.label != key.label || entry.id == key.id || !entry.valid) continue;
    std::ifstream in(entry.path, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    detail::EntryHeader header;
    if (detail::parse_entry_header(bytes.str(), header).empty()) {
      return std::make_pair(entry.id, header.text);
    }
  }
  return std::nullopt;
}

// Prints the explanation of one key; returns true when a lookup would hit.
bool explain_one(const KernelKey& kernel) {
  const detail::CacheKey key = detail::describe_cache_key(kernel);
  detail::DiskCache& cache = detail::jit_disk_cache();
  fmt::print("kernel:    {}\n", key.label);
  fmt::print("cache key: {} (XXH3-128 over these parts)\n", key.id);
  for (const auto& line : lines_of(key.text)) fmt::print("  {}\n", line);
  const fs::path path = cache.entry_path(key);
  fmt::print("entry:     {}\n", path.string());

  const auto& config = cache.config();
  const EntryCheck entry = check_entry(path, key);
  std::string verdict;
  bool hit = false;
  if (config.disabled) {
    verdict = "miss: MARLINRT_CACHE_DISABLE is set, so every process compiles in memory";
  } else if (!cache.usable() && !entry.exists) {
    verdict = fmt::format("miss: the cache cannot be used ({})", cache.unusable_reason());
  } else if (!entry.exists) {
    verdict = "miss: no entry with this key";
    if (auto other = same_kernel_other_key(cache, key)) {
      verdict += fmt::format(
          ". An entry for the same kernel exists under another key ({}); the parts that "
          "differ (- that entry, + this key):",
          other->first);
      const auto theirs = lines_of(other->second), ours = lines_of(key.text);
      for (const auto& line : theirs) {
        if (std::find(ours.begin(), ours.end(), line) == ours.end()) verdict += "\n  - " + line;
      }
      for (const auto& line : ours) {
        if (std::find(theirs.begin(), theirs.end(), line) == theirs.end()) {
          verdict += "\n  + " + line;
        }
      }
    } else {
      verdict += " (never compiled with these settings)";
    }
    verdict +=
        fmt::format("\nfix:       marlinrt prebuild {}   (same MARLINRT_* settings)", key.label);
  } else if (!entry.problem.empty()) {
    verdict = fmt::format(
        "miss: the entry is invalid ({}); a lookup removes it and recompiles\nfix:       "
        "marlinrt prebuild {}",
        entry.problem, key.label);
  } else {
    hit = true;
    verdict = cache.usable() ? "hit: the entry is valid"
                             : fmt::format(
                                   "hit: the entry is valid (the cache serves reads but "
                                   "not writes: {})",
                                   cache.unusable_reason());
  }
  fmt::print("exists:    {}\n",
             entry.exists ? (entry.problem.empty() ? "yes, valid" : "yes, INVALID") : "no");
  fmt::print("lookup:    {}\n", verdict);
  if (!hit && !detail::kernel_provider().options().jit_enabled) {
    fmt::print("           MARLINRT_JIT=off: this miss is an error (Status jit_disabled)\n");
  }
  const fs::path evidence = config.dir / "failed" / key.id;
  std::error_code ec;
  if (fs::exists(evidence, ec)) {
    fmt::print("note:      an earlier compile of this key failed; evidence in {}\n",
               evidence.string());
  }
  return hit;
}

}  // namespace

int run_explain(const ExplainOptions& options) {
  std::vector<KernelKey> keys;
  if (key_text_has_arch(options.key)) {
    if (!options.archs.empty()) resolve_target_archs(options.archs);  // reject a bad --arch
    keys.push_back(KernelKey::parse(options.key));
  } else {
    for (int arch : resolve_target_archs(options.archs)) {
      keys.push_back(KernelKey::parse(options.key + "/" + arch_name(arch)));
    }
  }
  bool all_hit = true;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i > 0) fmt::print("\n");
    all_hit &= explain_one(keys[i]);
  }
  return all_hit ? 0 : 1;
}

}  // namespace marlinrt::cli
