// The on-disk kernel cache: one self-checking file per key, atomic publish,
// a per-key cross-process compile lock, LRU eviction under a byte cap, and
// graceful degradation to "memory only" whenever the disk cannot be used.
//
// Layout under CacheConfig::dir:
//   v1/<id[0:2]>/<id>.entry   entries (format: cache/cache_entry_format.hpp)
//   v1/<id[0:2]>/.tmp-*       files being written (renamed into place)
//   locks/<id>.lock           per-key flock() files
//   failed/<id>/              compile failure evidence
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/cache_config.hpp"
#include "cache/cache_key.hpp"
#include "cache/compile_lock.hpp"

namespace marlinrt::detail {

struct CacheEntryInfo {
  std::string id, label;
  std::uint64_t file_bytes = 0;
  std::filesystem::path path;
  std::filesystem::file_time_type last_use;  // stamped by store() and every load() hit
  bool valid = false;
  std::string problem;  // why valid is false
};

// Thread-safe; several processes may share one directory.
class DiskCache {
 public:
  // Creates the directories (mode 0700) and checks who may write them. Never
  // throws for I/O problems: the cache then degrades, with one warning.
  explicit DiskCache(CacheConfig config);
  DiskCache(const DiskCache&) = delete;
  DiskCache& operator=(const DiskCache&) = delete;

  const CacheConfig& config() const { return config_; }
  // False when disabled, degraded to memory (after a failed write, existing
  // entries are still served), or refused (directory other users can write).
  bool usable() const;
  // Empty when usable; otherwise why not (for `marlinrt info`).
  std::string unusable_reason() const;

  // A hit returns the payload. A missing, damaged or foreign entry is a miss;
  // a damaged one is removed. Throws only for a malformed key id.
  std::optional<std::string> load(const CacheKey& key);
  // Publishes atomically (temp file, fsync, rename), then enforces max_bytes.
  // Never throws for I/O problems.
  void store(const CacheKey& key, std::string_view payload);
  // Blocks until this process owns `key` (re-check load() after). Returns a
  // lock holding nothing when locking is impossible; never throws for I/O.
  CompileLock lock(const CacheKey& key);
  // Writes source.cu, options.txt, log.txt and key.txt to failed/<id>/, or
  // to $TMPDIR/marlinrt-failed-<uid>/<id>/ when the cache is not usable, and
  // says where in a warning. Never throws.
  void record_failure(const CacheKey& key, std::string_view source, std::string_view options,
                      std::string_view log);

  // Where `key`'s entry lives (whether or not it exists).
  std::filesystem::path entry_path(const CacheKey& key) const;

  // Maintenance (the `marlinrt cache` commands). They act on config().dir
  // whatever the mode, because they are asked for explicitly.
  std::vector<CacheEntryInfo> list() const;    // header checks only (cheap)
  std::vector<CacheEntryInfo> verify() const;  // full checks: size, checksums, owner, mode
  // Removes invalid entries, temp files older than 10 minutes and idle lock
  // files, then evicts LRU entries down to max_bytes. Returns bytes freed.
  std::uint64_t gc();
  // Removes every entry (and stale temp files, idle locks, failed/). Returns
  // the number of entries removed.
  std::uint64_t clear();

 private:
  enum class Mode : int { off = 0, read_only = 1, read_write = 2 };

  void degrade(Mode to, const std::string& warning);
  std::filesystem::path entries_root() const;
  // Removes least-recently-used entries until the total is under max_bytes,
  // never `keep`. Returns bytes freed.
  std::uint64_t enforce_byte_cap(const std::filesystem::path& keep);
  std::vector<CacheEntryInfo> scan(bool full) const;
  void remove_idle_lock_files() const;
  std::uint64_t remove_stale_temp_files() const;
  // Whether an existing directory or file may be trusted; empty when yes.
  std::string unsafe_reason(const std::filesystem::path& path, unsigned uid, unsigned mode) const;

  CacheConfig config_;
  std::atomic<int> mode_{static_cast<int>(Mode::off)};
  std::atomic<bool> warned_{false};
  mutable std::mutex reason_mutex_;
  std::string reason_;
};

}  // namespace marlinrt::detail
