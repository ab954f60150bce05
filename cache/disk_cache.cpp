#include "cache/disk_cache.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "cache/cache_entry_format.hpp"
#include "runtime/fail.hpp"
#include "runtime/log.hpp"

namespace marlinrt::detail {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kEntrySuffix = ".entry";
constexpr std::string_view kLockSuffix = ".lock";
constexpr std::string_view kTempPrefix = ".tmp-";
// A temp file this old belongs to a writer that died: a live store takes milliseconds.
constexpr std::chrono::seconds kStaleTempAge{600};
// No cubin comes near this; a bigger file is damage, not something to read into memory.
constexpr std::uint64_t kMaxEntryFileBytes = 1ull << 30;

// Closes on scope exit.
struct FileDescriptor {
  int fd = -1;
  explicit FileDescriptor(int f) : fd(f) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
  int release() { return std::exchange(fd, -1); }
};

std::string error_text(int err) { return std::generic_category().message(err); }

void require_valid_id(std::string_view id) {
  if (!is_cache_key_id(id)) {
    fail(Status::invalid_argument,
         "cache key id '{}' is not valid: expected 32 lowercase hex characters (from "
         "CacheKeyBuilder::build)",
         id);
  }
}

// mkdir -p, creating missing components with mode 0700. Returns 0 or an errno.
int make_directories(const fs::path& path) {
  fs::path current;
  for (const fs::path& part : path) {
    current /= part;
    if (part.empty() || part == current.root_path()) continue;
    if (::mkdir(current.c_str(), 0700) != 0 && errno != EEXIST) return errno;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno;
  return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

int write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

// Reads up to `size` bytes at `offset` into `data`; returns how many were read.
std::size_t read_at(int fd, char* data, std::size_t size, std::size_t offset) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, data + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done;
}

timespec now_realtime() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}

bool older(const timespec& a, const timespec& b) {
  return a.tv_sec != b.tv_sec ? a.tv_sec < b.tv_sec : a.tv_nsec < b.tv_nsec;
}

fs::file_time_type to_file_time(const timespec& ts) {
  const auto since_epoch = std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
  const std::chrono::system_clock::time_point sys(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(since_epoch));
  return std::chrono::time_point_cast<fs::file_time_type::duration>(
      std::chrono::file_clock::from_sys(sys));
}

// Stamps "used now" as the modification time. An explicit clock value (not
// UTIME_NOW, which has the kernel's coarse tick) keeps LRU order exact.
void stamp_last_use(int fd) {
  const timespec times[2] = {{0, UTIME_OMIT}, now_realtime()};
  if (::futimens(fd, times) == 0) return;
  const timespec fallback[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};  // not the owner: coarse is fine
  if (::futimens(fd, fallback) != 0) {
    log(LogLevel::debug, "kernel cache: cannot stamp the last use of an entry ({})",
        error_text(errno));
  }
}

// Unlinks `path` only if it is still the file that was examined, so that an
// entry published meanwhile by another process is not thrown away.
enum class Removal { removed, gone, replaced, failed };
Removal remove_if_unchanged(const fs::path& path, dev_t dev, ino_t ino) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT ? Removal::gone : Removal::failed;
  if (st.st_dev != dev || st.st_ino != ino) return Removal::replaced;
  if (::unlink(path.c_str()) == 0) return Removal::removed;
  return errno == ENOENT ? Removal::gone : Removal::failed;
}

// Calls visit(path, file name) for every file in every shard directory.
void for_each_shard_file(const fs::path& root,
                         const std::function<void(const fs::path&, const std::string&)>& visit) {
  std::error_code ec;
  for (fs::directory_iterator shards(root, ec), end; !ec && shards != end; shards.increment(ec)) {
    const fs::path shard = shards->path();
    if (shard.filename().string().size() != 2) continue;
    std::error_code inner;
    for (fs::directory_iterator files(shard, inner); !inner && files != end;
         files.increment(inner)) {
      visit(files->path(), files->path().filename().string());
    }
  }
}

bool is_entry_name(const std::string& name) {
  return name.size() > kEntrySuffix.size() && name.ends_with(kEntrySuffix) && name.front() != '.';
}

// The first line where two key texts differ, to say why a lookup missed.
std::string first_difference(std::string_view stored, std::string_view asked) {
  while (!stored.empty() || !asked.empty()) {
    const auto a = stored.substr(0, stored.find('\n'));
    const auto b = asked.substr(0, asked.find('\n'));
    if (a != b) return fmt::format("stored '{}', asked for '{}'", a, b);
    stored.remove_prefix(std::min(stored.size(), a.size() + 1));
    asked.remove_prefix(std::min(asked.size(), b.size() + 1));
  }
  return "texts differ";
}

std::string refusal_warning(const fs::path& dir, const fs::path& path, const std::string& why) {
  return fmt::format(
      "refusing the kernel cache in {}: {} {}, so another user could plant kernels there. "
      "Make it private (chmod go-w {}) or choose another MARLINRT_CACHE_DIR, or set "
      "MARLINRT_CACHE_ALLOW_SHARED=1 if it is shared on purpose; kernels are kept in memory only",
      dir.native(), path.native(), why, path.native());
}

std::string write_failure_warning(const fs::path& dir, std::string_view action,
                                  const fs::path& where, int err) {
  return fmt::format(
      "the kernel cache in {} cannot be written ({} {}: {}); kernels compiled from now on are "
      "kept in memory only",
      dir.native(), action, where.native(), error_text(err));
}

// Writes the evidence files into `dir` (created 0700). Empty string on success.
std::string write_evidence(
    const fs::path& dir, const std::vector<std::pair<std::string_view, std::string_view>>& files) {
  if (int err = make_directories(dir))
    return fmt::format("creating {}: {}", dir.native(), error_text(err));
  for (const auto& [name, content] : files) {
    const fs::path path = dir / name;
    FileDescriptor fd(
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (fd.fd < 0) return fmt::format("creating {}: {}", path.native(), error_text(errno));
    if (int err = write_all(fd.fd, content)) {
      return fmt::format("writing {}: {}", path.native(), error_text(err));
    }
    if (::close(fd.release()) != 0)
      return fmt::format("closing {}: {}", path.native(), error_text(errno));
  }
  return {};
}

// $TMPDIR/marlinrt-failed-<uid>, made or accepted only if private to this user:
// /tmp is shared, so a directory someone else prepared there must not be used.
std::string private_temp_root(fs::path& root) {
  const char* tmp = std::getenv("TMPDIR");
  const fs::path base = (tmp != nullptr && tmp[0] == '/') ? fs::path(tmp) : fs::path("/tmp");
  root = base / fmt::format("marlinrt-failed-{}", ::geteuid());
  if (::mkdir(root.c_str(), 0700) != 0 && errno != EEXIST) {
    return fmt::format("creating {}: {}", root.native(), error_text(errno));
  }
  struct stat st {};
  if (::lstat(root.c_str(), &st) != 0)
    return fmt::format("{}: {}", root.native(), error_text(errno));
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
    return fmt::format("{} is not a private directory of this user", root.native());
  }
  return {};
}

struct EntryFile {
  fs::path path;
  std::uint64_t bytes = 0;
  timespec last_use{};
  dev_t dev = 0;
  ino_t ino = 0;
};

std::vector<EntryFile> entry_files(const fs::path& root) {
  std::vector<EntryFile> files;
  for_each_shard_file(root, [&](const fs::path& path, const std::string& name) {
    struct stat st {};
    if (!is_entry_name(name) || ::lstat(path.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) return;
    files.push_back(
        {path, static_cast<std::uint64_t>(st.st_size), st.st_mtim, st.st_dev, st.st_ino});
  });
  return files;
}

}  // namespace

DiskCache::DiskCache(CacheConfig config) : config_(std::move(config)) {
  if (config_.disabled) {
    std::lock_guard lock(reason_mutex_);
    reason_ = "disabled by MARLINRT_CACHE_DISABLE";
    return;
  }
  if (config_.dir.empty()) {
    degrade(Mode::off,
            "no kernel cache directory could be determined (set MARLINRT_CACHE_DIR, "
            "XDG_CACHE_HOME or HOME); kernels are kept in memory only");
    return;
  }
  for (const fs::path& dir : {config_.dir, entries_root(), config_.dir / "locks"}) {
    if (int err = make_directories(dir)) {
      degrade(Mode::off, fmt::format("the kernel cache directory {} cannot be used (creating {}: "
                                     "{}); kernels are kept in memory only",
                                     config_.dir.native(), dir.native(), error_text(err)));
      return;
    }
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) {
      degrade(Mode::off, fmt::format("the kernel cache directory {} cannot be used ({}: {}); "
                                     "kernels are kept in memory only",
                                     config_.dir.native(), dir.native(), error_text(errno)));
      return;
    }
    if (auto why = unsafe_reason(dir, st.st_uid, st.st_mode); !why.empty()) {
      degrade(Mode::off, refusal_warning(config_.dir, dir, why));
      return;
    }
  }
  mode_.store(static_cast<int>(Mode::read_write));
}

bool DiskCache::usable() const { return mode_.load() == static_cast<int>(Mode::read_write); }

std::string DiskCache::unusable_reason() const {
  if (usable()) return {};
  std::lock_guard lock(reason_mutex_);
  return reason_;
}

void DiskCache::degrade(Mode to, const std::string& warning) {
  int current = mode_.load();
  while (current > static_cast<int>(to) &&
         !mode_.compare_exchange_weak(current, static_cast<int>(to))) {
  }
  {
    std::lock_guard lock(reason_mutex_);
    if (reason_.empty()) reason_ = warning;
  }
  // One warning per cache: later failures are consequences of the first.
  if (!warned_.exchange(true)) log(LogLevel::warn, "{}", warning);
}

std::string DiskCache::unsafe_reason(const fs::path& path, unsigned uid, unsigned mode) const {
  (void)path;
  if (config_.allow_shared_dir) return {};
  if (uid != ::geteuid()) {
    return fmt::format("is owned by uid {}, not by this user (uid {})", uid, ::geteuid());
  }
  if ((mode & (S_IWGRP | S_IWOTH)) != 0) {
    const char* who = (mode & S_IWGRP) && (mode & S_IWOTH) ? "group and other users"
                      : (mode & S_IWGRP)                   ? "its group"
                                                           : "other users";
    return fmt::format("is writable by {} (mode {:04o})", who, mode & 07777);
  }
  return {};
}

fs::path DiskCache::entries_root() const { return config_.dir / "v1"; }

fs::path DiskCache::entry_path(const CacheKey& key) const {
  require_valid_id(key.id);
  return entries_root() / key.id.substr(0, 2) / (key.id + std::string(kEntrySuffix));
}

std::optional<std::string> DiskCache::load(const CacheKey& key) {
  const fs::path path = entry_path(key);
  if (mode_.load() == static_cast<int>(Mode::off)) return std::nullopt;

  struct stat st {};
  if (::stat(path.parent_path().c_str(), &st) == 0) {
    if (auto why = unsafe_reason(path.parent_path(), st.st_uid, st.st_mode); !why.empty()) {
      degrade(Mode::off, refusal_warning(config_.dir, path.parent_path(), why));
      return std::nullopt;
    }
  }
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.fd < 0) {
    const int err = errno;
    if (err == ELOOP && ::unlink(path.c_str()) == 0) {
      log(LogLevel::debug,
          "kernel cache: {} is a symbolic link, not an entry; treated as a miss and removed",
          path.native());
    } else if (err == ENOENT) {
      log(LogLevel::debug, "kernel cache: miss for {} (no entry {})", key.label, path.native());
    } else {
      log(LogLevel::debug, "kernel cache: cannot read {} ({}); treated as a miss", path.native(),
          error_text(err));
    }
    return std::nullopt;
  }
  if (::fstat(fd.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    log(LogLevel::debug, "kernel cache: {} is not a regular file; treated as a miss",
        path.native());
    return std::nullopt;
  }
  if (auto why = unsafe_reason(path, st.st_uid, st.st_mode); !why.empty()) {
    degrade(Mode::off, refusal_warning(config_.dir, path, why));
    return std::nullopt;
  }

  std::string problem;
  std::string bytes;
  EntryHeader header;
  if (static_cast<std::uint64_t>(st.st_size) > kMaxEntryFileBytes) {
    problem = fmt::format("implausibly large: {} bytes", st.st_size);
  } else {
    bytes.resize(static_cast<std::size_t>(st.st_size));
    if (read_at(fd.fd, bytes.data(), bytes.size(), 0) != bytes.size()) problem = "short read";
  }
  if (problem.empty()) problem = parse_entry_header(bytes, header);
  if (problem.empty() && header.id != key.id) {
    problem = fmt::format("stored key id {} differs from the file name", header.id);
  }
  if (problem.empty() && header.text != key.text) {
    problem = "stored key text differs from the key asked for: " +
              first_difference(header.text, key.text);
  }
  if (problem.empty()) problem = check_entry_payload(bytes, header);
  if (!problem.empty()) {
    const bool removed = remove_if_unchanged(path, st.st_dev, st.st_ino) == Removal::removed;
    log(LogLevel::debug, "kernel cache: {} is not a valid entry for {} ({}); treated as a miss{}",
        path.native(), key.label, problem, removed ? " and removed" : "");
    return std::nullopt;
  }
  stamp_last_use(fd.fd);
  log(LogLevel::debug, "kernel cache: hit for {} ({} bytes) in {}", key.label, header.payload_bytes,
      path.native());
  bytes.erase(0, header.header_bytes);
  return bytes;
}

void DiskCache::store(const CacheKey& key, std::string_view payload) {
  const fs::path path = entry_path(key);
  if (!usable()) return;
  std::string bytes;
  try {
    bytes = encode_entry(key, payload);
  } catch (const std::bad_alloc&) {
    log(LogLevel::debug, "kernel cache: out of memory encoding {}; not stored", key.label);
    return;
  }
  const fs::path shard = path.parent_path();
  struct Step {
    int err = 0;
    std::string_view action;
    fs::path where;
  };
  auto publish = [&]() -> Step {
    if (int err = make_directories(shard)) return {err, "creating", shard};
    std::uint64_t nonce = 0;
    if (::getrandom(&nonce, sizeof nonce, 0) != static_cast<ssize_t>(sizeof nonce)) {
      nonce = static_cast<std::uint64_t>(now_realtime().tv_nsec);
    }
    const fs::path temp =
        shard / fmt::format("{}{}-{}-{:016x}", kTempPrefix, key.id, ::getpid(), nonce);
    FileDescriptor fd(
        ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (fd.fd < 0) return {errno, "creating", temp};
    auto abandon = [&](std::string_view action, int err) -> Step {
      ::unlink(temp.c_str());
      return {err, action, temp};
    };
    if (int err = write_all(fd.fd, bytes)) return abandon("writing", err);
    if (::fsync(fd.fd) != 0) return abandon("flushing", errno);
    stamp_last_use(fd.fd);
    // close() reports deferred write errors on network file systems.
    if (::close(fd.release()) != 0) return abandon("closing", errno);
    // The directory is not fsync'ed: that would only make the rename survive a
    // power loss, and an entry lost that way is a plain miss. It costs a
    // journal commit (tens of ms) per store.
    if (::rename(temp.c_str(), path.c_str()) != 0) return abandon("renaming to", errno);
    return {};
  };
  Step step;
  // ENOENT means a concurrent `cache clear` or an rm -rf removed a directory
  // or our temp file underneath us: publish again rather than give up.
  for (int attempt = 0; attempt < 4; ++attempt) {
    step = publish();
    if (step.err != ENOENT) break;
  }
  if (step.err != 0) {
    degrade(Mode::read_only, write_failure_warning(config_.dir, step.action, step.where, step.err));
    return;
  }
  log(LogLevel::debug, "kernel cache: stored {} ({} bytes) in {}", key.label, payload.size(),
      path.native());
  enforce_byte_cap(path);
}

CompileLock DiskCache::lock(const CacheKey& key) {
  require_valid_id(key.id);
  if (!usable()) return {};
  const fs::path dir = config_.dir / "locks";
  const fs::path path = dir / (key.id + std::string(kLockSuffix));
  bool made_dir = false;
  for (int attempt = 0; attempt < 64; ++attempt) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
      const int err = errno;
      if (err == ENOENT && !made_dir) {
        made_dir = true;
        if (make_directories(dir) == 0) continue;
      }
      log(LogLevel::debug,
          "kernel cache: cannot create the lock file {} ({}); {} is compiled without the "
          "cross-process lock",
          path.native(), error_text(err), key.label);
      return {};
    }
    int rc = 0;
    while ((rc = ::flock(fd, LOCK_EX)) != 0 && errno == EINTR) {
    }
    if (rc != 0) {
      log(LogLevel::debug, "kernel cache: cannot lock {} ({}); {} is compiled without it",
          path.native(), error_text(errno), key.label);
      ::close(fd);
      return {};
    }
    // gc may have unlinked the file while we waited; then the lock we hold
    // excludes nobody, so lock the file that is there now.
    struct stat held {
    }, current{};
    if (::fstat(fd, &held) == 0 && ::stat(path.c_str(), &current) == 0 &&
        held.st_dev == current.st_dev && held.st_ino == current.st_ino) {
      return CompileLock(fd);
    }
    ::close(fd);
  }
  return {};
}

void DiskCache::record_failure(const CacheKey& key, std::string_view source,
                               std::string_view options, std::string_view log_text) {
  try {
    const std::string id = is_cache_key_id(key.id) ? key.id : std::string("invalid-key-id");
    const std::string key_text =
        fmt::format("id: {}\nlabel: {}\n{}library: marlinrt {}\n", id, key.label, key.text,
#ifdef MARLINRT_VERSION
                    MARLINRT_VERSION
#else
                    "unknown"
#endif
        );
    const std::vector<std::pair<std::string_view, std::string_view>> files = {
        {"source.cu", source},
        {"options.txt", options},
        {"log.txt", log_text},
        {"key.txt", key_text}};
    if (usable()) {
      const fs::path dir = config_.dir / "failed" / id;
      const std::string error = write_evidence(dir, files);
      if (error.empty()) {
        log(LogLevel::warn,
            "kernel {} failed to compile; its source, options, compiler log and key are in {}",
            key.label, dir.native());
        return;
      }
      degrade(Mode::read_only, fmt::format("the kernel cache in {} cannot be written ({}); "
                                           "kernels compiled from now on are kept in memory only",
                                           config_.dir.native(), error));
    }
    fs::path root;
    std::string error = private_temp_root(root);
    if (error.empty()) error = write_evidence(root / id, files);
    if (error.empty()) {
      log(LogLevel::warn,
          "kernel {} failed to compile; the kernel cache is not usable, so its source, options, "
          "compiler log and key are in {}",
          key.label, (root / id).native());
    } else {
      log(LogLevel::warn, "kernel {} failed to compile and the evidence could not be kept ({})",
          key.label, error);
    }
  } catch (...) {
    // Keeping evidence is a courtesy; it must not mask the compile error.
  }
}

std::vector<CacheEntryInfo> DiskCache::list() const { return scan(false); }

std::vector<CacheEntryInfo> DiskCache::verify() const { return scan(true); }

std::vector<CacheEntryInfo> DiskCache::scan(bool full) const {
  std::vector<CacheEntryInfo> out;
  for_each_shard_file(entries_root(), [&](const fs::path& path, const std::string& name) {
    if (!is_entry_name(name)) return;
    CacheEntryInfo info;
    info.path = path;
    info.id = name.substr(0, name.size() - kEntrySuffix.size());
    FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    struct stat st {};
    std::string problem;
    if (fd.fd < 0) {
      if (errno == ENOENT) return;  // removed since the directory was read
      problem = errno == ELOOP ? "a symbolic link, not an entry file"
                               : fmt::format("cannot open: {}", error_text(errno));
    } else if (::fstat(fd.fd, &st) != 0) {
      problem = fmt::format("cannot stat: {}", error_text(errno));
    } else {
      info.file_bytes = static_cast<std::uint64_t>(st.st_size);
      info.last_use = to_file_time(st.st_mtim);
      if (!S_ISREG(st.st_mode)) problem = "not a regular file";
    }
    if (problem.empty() && !is_cache_key_id(info.id)) {
      problem = "file name is not <32 lowercase hex chars>.entry";
    }
    if (problem.empty() && path.parent_path().filename() != info.id.substr(0, 2)) {
      problem = "in the wrong directory for its id";
    }
    if (problem.empty()) {
      if (auto why = unsafe_reason(path, st.st_uid, st.st_mode); !why.empty()) {
        problem = "file " + why + " (set MARLINRT_CACHE_ALLOW_SHARED=1 to accept)";
      }
    }
    EntryHeader header;
    if (problem.empty() && info.file_bytes > kMaxEntryFileBytes) {
      problem = fmt::format("implausibly large: {} bytes", info.file_bytes);
    }
    if (problem.empty()) {
      std::string bytes;
      // Without `full`, only the header is read: listing large cubins stays cheap.
      std::size_t want = full ? static_cast<std::size_t>(info.file_bytes)
                              : std::min<std::size_t>(kEntryFixedHeaderBytes, info.file_bytes);
      bytes.resize(want);
      bytes.resize(read_at(fd.fd, bytes.data(), bytes.size(), 0));
      std::string ignored;
      if (const std::size_t need = entry_header_bytes(bytes, ignored);
          !full && need > bytes.size() && need <= info.file_bytes) {
        const std::size_t have = bytes.size();
        bytes.resize(need);
        bytes.resize(have + read_at(fd.fd, bytes.data() + have, need - have, have));
      }
      problem = parse_entry_header(bytes, header);
      if (problem.empty()) info.label = header.label;
      if (problem.empty() && header.id != info.id) {
        problem = fmt::format("stored key id {} differs from the file name", header.id);
      }
      if (problem.empty() && header.file_bytes() != info.file_bytes) {
        problem = fmt::format("wrong size: {} bytes, the header announces {}", info.file_bytes,
                              header.file_bytes());
      }
      if (problem.empty() && full) problem = check_entry_payload(bytes, header);
    }
    info.valid = problem.empty();
    info.problem = std::move(problem);
    out.push_back(std::move(info));
  });
  std::sort(out.begin(), out.end(),
            [](const CacheEntryInfo& a, const CacheEntryInfo& b) { return a.path < b.path; });
  return out;
}

std::uint64_t DiskCache::remove_stale_temp_files() const {
  std::uint64_t freed = 0;
  timespec cutoff = now_realtime();
  cutoff.tv_sec -= kStaleTempAge.count();
  for_each_shard_file(entries_root(), [&](const fs::path& path, const std::string& name) {
    struct stat st {};
    if (!name.starts_with(kTempPrefix) || ::lstat(path.c_str(), &st) != 0) return;
    if (older(st.st_mtim, cutoff) &&
        remove_if_unchanged(path, st.st_dev, st.st_ino) == Removal::removed) {
      freed += static_cast<std::uint64_t>(st.st_size);
      log(LogLevel::info, "kernel cache: removed the abandoned temp file {}", path.native());
    }
  });
  return freed;
}

void DiskCache::remove_idle_lock_files() const {
  std::error_code ec;
  for (fs::directory_iterator it(config_.dir / "locks", ec), end; !ec && it != end;
       it.increment(ec)) {
    const fs::path path = it->path();
    if (!path.filename().string().ends_with(kLockSuffix)) continue;
    FileDescriptor fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
    struct stat st {};
    // Unlinking while holding the lock is safe: a process that opened the
    // old file re-checks the inode after locking (see lock()).
    if (fd.fd >= 0 && ::flock(fd.fd, LOCK_EX | LOCK_NB) == 0 && ::fstat(fd.fd, &st) == 0) {
      remove_if_unchanged(path, st.st_dev, st.st_ino);
    }
  }
}

std::uint64_t DiskCache::enforce_byte_cap(const fs::path& keep) {
  if (config_.max_bytes == 0) return 0;
  std::vector<EntryFile> files = entry_files(entries_root());
  std::uint64_t total = 0;
  for (const auto& f : files) total += f.bytes;
  if (total <= config_.max_bytes) return 0;
  std::sort(files.begin(), files.end(), [](const EntryFile& a, const EntryFile& b) {
    if (older(a.last_use, b.last_use)) return true;
    if (older(b.last_use, a.last_use)) return false;
    return a.path < b.path;
  });
  std::uint64_t freed = 0;
  for (const auto& f : files) {
    if (total <= config_.max_bytes) break;
    if (f.path == keep) continue;
    const Removal result = remove_if_unchanged(f.path, f.dev, f.ino);
    if (result == Removal::removed || result == Removal::gone) total -= f.bytes;
    if (result == Removal::removed) {
      freed += f.bytes;
      log(LogLevel::info,
          "kernel cache: evicted {} ({} bytes, least recently used) to stay under {} bytes",
          f.path.native(), f.bytes, config_.max_bytes);
    }
  }
  return freed;
}

std::uint64_t DiskCache::gc() {
  std::uint64_t freed = 0;
  for (const CacheEntryInfo& entry : verify()) {
    if (entry.valid) continue;
    struct stat st {};
    if (::lstat(entry.path.c_str(), &st) != 0) continue;
    // Only the file that was verified: a fresh one stored meanwhile is kept.
    if (static_cast<std::uint64_t>(st.st_size) == entry.file_bytes &&
        to_file_time(st.st_mtim) == entry.last_use &&
        remove_if_unchanged(entry.path, st.st_dev, st.st_ino) == Removal::removed) {
      freed += entry.file_bytes;
      log(LogLevel::info, "kernel cache: gc removed {} ({})", entry.path.native(), entry.problem);
    }
  }
  freed += remove_stale_temp_files();
  remove_idle_lock_files();
  freed += enforce_byte_cap({});
  return freed;
}

std::uint64_t DiskCache::clear() {
  std::uint64_t removed = 0;
  for (const EntryFile& f : entry_files(entries_root())) {
    if (remove_if_unchanged(f.path, f.dev, f.ino) == Removal::removed) ++removed;
  }
  remove_stale_temp_files();
  remove_idle_lock_files();
  std::error_code ec;
  fs::remove_all(config_.dir / "failed", ec);
  log(LogLevel::info, "kernel cache: cleared {} entries from {}", removed, config_.dir.native());
  return removed;
}

}  // namespace marlinrt::detail
