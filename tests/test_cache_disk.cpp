// The on-disk kernel cache (cache/disk_cache.hpp): entry files, damage,
// degradation, shared-directory refusal, the byte cap, failure evidence,
// maintenance, and several processes at once.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cache/cache_entry_format.hpp"
#include "cache/disk_cache.hpp"
#include "marlinrt/error.hpp"
#include "runtime/log.hpp"

using namespace marlinrt;
using namespace marlinrt::detail;
namespace fs = std::filesystem;

namespace {

class TempDir {
 public:
  TempDir() {
    char name[] = "/tmp/marlinrt-cache-test-XXXXXX";
    REQUIRE(::mkdtemp(name) != nullptr);
    path_ = name;
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Sends fd 2 to an anonymous temp file for one scope; text() reads it back.
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    char name[] = "/tmp/marlinrt-cache-stderr-XXXXXX";
    file_ = ::mkstemp(name);
    ::unlink(name);
    saved_ = ::dup(STDERR_FILENO);
    ::dup2(file_, STDERR_FILENO);
  }
  ~StderrCapture() {
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    ::close(file_);
  }
  std::string text() const {
    std::string out;
    char buf[4096];
    for (off_t at = 0;; at += static_cast<off_t>(sizeof buf)) {
      const ssize_t n = ::pread(file_, buf, sizeof buf, at);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }
  int warnings() const { return count("marlinrt: warning: "); }
  int count(const std::string& needle) const {
    const std::string t = text();
    int n = 0;
    for (auto at = t.find(needle); at != std::string::npos; at = t.find(needle, at + 1)) ++n;
    return n;
  }

 private:
  int file_ = -1;
  int saved_ = -1;
};

// Sets the log level for one scope (tests must not depend on MARLINRT_LOG).
struct LogLevelScope {
  LogLevel saved = log_level();
  explicit LogLevelScope(LogLevel level) { set_log_level(level); }
  ~LogLevelScope() { set_log_level(saved); }
};

CacheConfig config_for(const fs::path& dir, std::uint64_t max_bytes = 0) {
  CacheConfig c;
  c.dir = dir;
  c.max_bytes = max_bytes;
  return c;
}

CacheKey make_key(const std::string& name) {
  return CacheKeyBuilder(name).add("unit", name).add("arch", "sm_90").build();
}

std::string payload_for(const std::string& name, std::size_t bytes = 300) {
  std::string p;
  for (std::size_t i = 0; p.size() < bytes; ++i) p += name + char('\0' + i % 7);
  p.resize(bytes);
  return p;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

unsigned mode_of(const fs::path& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Runs `body` in a fork()ed child; returns what it reported ("" = success).
// Children report through a pipe and _exit, so Catch2 state stays in the parent.
std::string run_in_child(const std::function<std::string()>& body) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string report;
    try {
      report = body();
    } catch (const std::exception& e) {
      report = std::string("child threw: ") + e.what();
    } catch (...) {
      report = "child threw";
    }
    if (::write(fds[1], report.data(), report.size()) < 0) ::_exit(3);
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string report;
  char buf[1024];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) {
    report.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    report += " [child exited abnormally: status " + std::to_string(status) + "]";
  }
  return report;
}

std::uint64_t get_u32(const std::string& b, std::size_t at) {
  std::uint64_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[at + i]);
  return v;
}

// Rewrites the header checksum so that a deliberate header change is seen as
// that change (e.g. a format version) rather than as a checksum mismatch.
void reseal_header(std::string& file) {
  const std::size_t checked = kEntryFixedHeaderBytes + get_u32(file, 12) + get_u32(file, 16);
  const std::uint64_t h = XXH64(file.data(), checked, 0);
  for (int i = 0; i < 8; ++i) file[checked + i] = static_cast<char>((h >> (8 * i)) & 0xff);
}

}  // namespace

TEST_CASE("cache stores one self-checking file per entry and loads it back", "[cache]") {
  const TempDir tmp;
  const LogLevelScope quiet(LogLevel::warn);
  const fs::path dir = tmp.path() / "fresh" / "cache";  // created by DiskCache
  DiskCache cache(config_for(dir));
  REQUIRE(cache.usable());
  CHECK(cache.unusable_reason().empty());
  CHECK(mode_of(tmp.path() / "fresh") == 0700);
  CHECK(mode_of(dir) == 0700);
  CHECK(mode_of(dir / "v1") == 0700);
  CHECK(mode_of(dir / "locks") == 0700);

  const CacheKey key = make_key("roundtrip");
  std::string payload(
      "\x7f"
      "ELF\0\0binary\0payload",
      19);
  CHECK_FALSE(cache.load(key).has_value());
  cache.store(key, payload);
  const fs::path path = dir / "v1" / key.id.substr(0, 2) / (key.id + ".entry");
  CHECK(cache.entry_path(key) == path);
  REQUIRE(fs::is_regular_file(path));
  CHECK(mode_of(path.parent_path()) == 0700);
  CHECK(mode_of(path) == 0600);
  CHECK(names_in(path.parent_path()) ==
        std::vector<std::string>{key.id + ".entry"});  // no temp left

  const std::string file = read_file(path);
  CHECK(file.substr(0, 8) == "MRTCACHE");
  CHECK(get_u32(file, 8) == kEntryFormatVersion);
  CHECK(file.find(key.text) != std::string::npos);
  CHECK(file.size() ==
        kEntryFixedHeaderBytes + key.label.size() + key.text.size() + 8 + payload.size());

  const auto loaded = cache.load(key);
  REQUIRE(loaded.has_value());
  CHECK(*loaded == payload);
  // A second cache object (another process's view) reads the same entry.
  CHECK(DiskCache(config_for(dir)).load(key) == payload);

  // Replacing an entry publishes the new bytes.
  cache.store(key, "v2");
  CHECK(cache.load(key) == std::string("v2"));
  cache.store(key, "");
  CHECK(cache.load(key) == std::string());

  const auto entries = cache.list();
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].id == key.id);
  CHECK(entries[0].label == "roundtrip");
  CHECK(entries[0].valid);
  CHECK(entries[0].path == path);
  CHECK(entries[0].file_bytes == fs::file_size(path));

  CacheKey bad = key;
  bad.id = "../../etc";
  try {
    cache.load(bad);
    FAIL("a malformed key id must be rejected");
  } catch (const Error& e) {
    CHECK(e.status() == Status::invalid_argument);
    CHECK_THAT(e.what(), Catch::Contains("32 lowercase hex"));
  }
  CHECK_THROWS_AS(cache.store(bad, "x"), Error);
}

TEST_CASE("damaged or foreign cache entries are misses, removed, and replaced", "[cache]") {
  const TempDir tmp;
  DiskCache cache(config_for(tmp.path()));
  REQUIRE(cache.usable());
  const CacheKey key = make_key("damage");
  const CacheKey other = make_key("other");
  const std::string payload = payload_for("damage", 4000);
  cache.store(key, payload);
  cache.store(other, payload_for("other"));
  const fs::path path = cache.entry_path(key);
  const std::string good = read_file(path);
  const std::string other_file = read_file(cache.entry_path(other));
  const std::size_t header_end = good.size() - payload.size();

  struct Damage {
    const char* name;
    std::function<std::string(std::string)> apply;
    const char* reason;
  };
  const std::vector<Damage> damages = {
      {"empty file", [](std::string) { return std::string(); }, "short file"},
      {"short file", [](std::string f) { return f.substr(0, 10); }, "short file"},
      {"truncated header", [&](std::string f) { return f.substr(0, header_end - 3); },
       "truncated header"},
      {"truncated payload", [](std::string f) { return f.substr(0, f.size() - 1); }, "wrong size"},
      {"trailing garbage", [](std::string f) { return f + "x"; }, "wrong size"},
      {"bit flip in payload",
       [&](std::string f) {
         f[header_end + 1234] ^= 0x10;
         return f;
       },
       "payload checksum mismatch"},
      {"bit flip in key text",
       [&](std::string f) {
         f[header_end - 20] ^= 0x01;
         return f;
       },
       "header checksum mismatch"},
      {"bit flip in payload length",
       [](std::string f) {
         f[25] ^= 0x01;
         return f;
       },
       "header checksum mismatch"},
      {"wrong magic",
       [](std::string f) {
         f[0] = 'X';
         return f;
       },
       "wrong magic"},
      {"wrong format version",
       [](std::string f) {
         f[8] = 2;
         reseal_header(f);
         return f;
       },
       "format version 2"},
      {"another key's entry under this name", [&](std::string) { return other_file; },
       "differs from the file name"},
  };
  for (const auto& damage : damages) {
    INFO(damage.name);
    write_file(path, damage.apply(good));
    const LogLevelScope debug(LogLevel::debug);
    const StderrCapture capture;
    std::optional<std::string> loaded;
    CHECK_NOTHROW(loaded = cache.load(key));
    CHECK_FALSE(loaded.has_value());
    CHECK_FALSE(fs::exists(path));
    CHECK(capture.count("marlinrt: debug: ") == 1);
    CHECK_THAT(capture.text(), Catch::Contains(path.string()) && Catch::Contains(damage.reason) &&
                                   Catch::Contains("treated as a miss and removed"));
    CHECK(capture.warnings() == 0);
    CHECK(cache.usable());
    cache.store(key, payload);  // the next compile replaces it
    CHECK(cache.load(key) == payload);
  }
}

TEST_CASE("impostor key texts, symbolic links and missing files are misses", "[cache]") {
  const TempDir tmp;
  DiskCache cache(config_for(tmp.path()));
  REQUIRE(cache.usable());
  const CacheKey key = make_key("damage");
  const std::string payload = payload_for("damage", 4000);
  cache.store(key, payload);
  const fs::path path = cache.entry_path(key);
  const std::string good = read_file(path);

  SECTION("a different key text under the same id is a miss") {
    CacheKey impostor = key;
    impostor.text = "unit: something else\n";
    const LogLevelScope debug(LogLevel::debug);
    const StderrCapture capture;
    CHECK_FALSE(cache.load(impostor).has_value());
    CHECK_THAT(capture.text(),
               Catch::Contains("stored key text differs") && Catch::Contains("something else"));
    CHECK_FALSE(fs::exists(path));
    cache.store(key, payload);
    CHECK(cache.load(key) == payload);
  }
  SECTION("a symbolic link is not followed") {
    const fs::path target = tmp.path() / "planted";
    write_file(target, good);
    fs::remove(path);
    fs::create_symlink(target, path);
    CHECK_FALSE(cache.load(key).has_value());
    CHECK_FALSE(fs::is_symlink(path));
    CHECK(fs::exists(target));
  }
  SECTION("a missing file is a plain miss") {
    fs::remove(path);
    CHECK_FALSE(cache.load(key).has_value());
    CHECK(cache.usable());
  }
}

TEST_CASE("cache directory that cannot be created degrades to memory with one warning", "[cache]") {
  const TempDir tmp;
  const LogLevelScope level(LogLevel::warn);
  write_file(tmp.path() / "plain-file", "not a directory");
  struct Case {
    const char* name;
    fs::path dir;
  };
  const std::vector<Case> cases = {
      {"below a regular file (ENOTDIR)", tmp.path() / "plain-file" / "cache"},
      {"a regular file", tmp.path() / "plain-file"},
      {"under /proc", "/proc/marlinrt-cache-test/cache"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    const StderrCapture capture;
    DiskCache cache(config_for(c.dir));
    CHECK_FALSE(cache.usable());
    const CacheKey key = make_key("degraded");
    CHECK_NOTHROW(cache.store(key, "payload"));
    CHECK_NOTHROW(cache.store(key, "payload"));
    CHECK_FALSE(cache.load(key).has_value());
    CHECK_FALSE(cache.lock(key).held());
    CHECK(capture.warnings() == 1);
    CHECK_THAT(capture.text(),
               Catch::Contains(c.dir.string()) && Catch::Contains("in memory only"));
    CHECK_THAT(cache.unusable_reason(), Catch::Contains(c.dir.string()));
  }
  {
    const StderrCapture capture;
    CacheConfig config = config_for(tmp.path() / "never-created");
    config.disabled = true;
    DiskCache cache(config);
    CHECK_FALSE(cache.usable());
    CHECK_THAT(cache.unusable_reason(), Catch::Contains("MARLINRT_CACHE_DISABLE"));
    cache.store(make_key("off"), "x");
    CHECK_FALSE(cache.load(make_key("off")).has_value());
    CHECK_FALSE(fs::exists(tmp.path() / "never-created"));
    CHECK(capture.text().empty());  // asked for: no warning
  }
}

TEST_CASE("a failed write degrades to memory once; existing entries are still served", "[cache]") {
  const TempDir tmp;
  const LogLevelScope level(LogLevel::warn);
  DiskCache cache(config_for(tmp.path()));
  REQUIRE(cache.usable());
  const CacheKey kept = make_key("kept");
  cache.store(kept, "old kernel");
  // Find a key whose shard differs, and make that shard unwritable (a file).
  CacheKey blocked = make_key("blocked-0");
  for (int i = 1; blocked.id.substr(0, 2) == kept.id.substr(0, 2); ++i) {
    blocked = make_key("blocked-" + std::to_string(i));
  }
  const fs::path shard = cache.entry_path(blocked).parent_path();
  write_file(shard, "in the way");

  const StderrCapture capture;
  CHECK_NOTHROW(cache.store(blocked, "new kernel"));
  CHECK_FALSE(cache.usable());
  CHECK(capture.warnings() == 1);
  CHECK_THAT(capture.text(), Catch::Contains(shard.string()) &&
                                 Catch::Contains("cannot be written") &&
                                 Catch::Contains("Not a directory"));
  CHECK_NOTHROW(cache.store(blocked, "again"));
  CHECK_NOTHROW(cache.store(make_key("third"), "again"));
  CHECK(capture.warnings() == 1);
  CHECK(cache.load(kept) == std::string("old kernel"));
  CHECK_FALSE(cache.load(blocked).has_value());
  CHECK_FALSE(cache.lock(blocked).held());
}

TEST_CASE("a full disk (EFBIG) degrades to memory with one warning and leaves no temp file",
          "[cache]") {
  const TempDir tmp;
  const std::string report = run_in_child([&]() -> std::string {
    set_log_level(LogLevel::warn);
    const StderrCapture capture;
    ::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{16384, 16384};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return "setrlimit failed";
    DiskCache cache(config_for(tmp.path()));
    if (!cache.usable()) return "cache not usable before the write";
    const CacheKey key = make_key("big");
    cache.store(key, payload_for("big", 100000));
    cache.store(key, payload_for("big", 100000));
    cache.store(make_key("small"), "small");
    std::string problems;
    if (cache.usable()) problems += "still usable after EFBIG; ";
    if (capture.warnings() != 1) problems += "warnings: " + capture.text() + "; ";
    if (capture.text().find("File too large") == std::string::npos ||
        capture.text().find(tmp.path().string()) == std::string::npos) {
      problems += "warning does not say what and where: " + capture.text() + "; ";
    }
    if (cache.load(key).has_value()) problems += "a partial entry was served; ";
    const auto left = names_in(cache.entry_path(key).parent_path());
    if (!left.empty()) problems += "files left behind: " + left.front() + "; ";
    return problems;
  });
  CHECK(report.empty());
  INFO(report);
}

TEST_CASE("cache refuses directories and entries other users can write", "[cache]") {
  const TempDir tmp;
  const LogLevelScope level(LogLevel::warn);
  const CacheKey key = make_key("planted");
  {
    DiskCache cache(config_for(tmp.path()));
    cache.store(key, "kernel");
    REQUIRE(cache.load(key) == std::string("kernel"));
  }
  SECTION("world-writable cache directory") {
    fs::permissions(tmp.path(), fs::perms::all);
    const StderrCapture capture;
    DiskCache cache(config_for(tmp.path()));
    CHECK_FALSE(cache.usable());
    CHECK_FALSE(cache.load(key).has_value());
    cache.store(make_key("new"), "x");
    CHECK_FALSE(fs::exists(cache.entry_path(make_key("new"))));
    CHECK_FALSE(cache.lock(key).held());
    CHECK(capture.warnings() == 1);
    CHECK_THAT(capture.text(), Catch::Contains(tmp.path().string()) &&
                                   Catch::Contains("writable by group and other users") &&
                                   Catch::Contains("MARLINRT_CACHE_ALLOW_SHARED=1"));
    CacheConfig allowed = config_for(tmp.path());
    allowed.allow_shared_dir = true;
    DiskCache shared(allowed);
    CHECK(shared.usable());
    CHECK(shared.load(key) == std::string("kernel"));
  }
  SECTION("group-writable shard directory") {
    DiskCache cache(config_for(tmp.path()));
    REQUIRE(cache.usable());
    const fs::path shard = cache.entry_path(key).parent_path();
    fs::permissions(shard, fs::perms::group_write, fs::perm_options::add);
    const StderrCapture capture;
    CHECK_FALSE(cache.load(key).has_value());
    CHECK_FALSE(cache.usable());
    CHECK(capture.warnings() == 1);
    CHECK_THAT(capture.text(), Catch::Contains(shard.string()));
  }
  SECTION("group-writable entry file") {
    DiskCache cache(config_for(tmp.path()));
    REQUIRE(cache.usable());
    fs::permissions(cache.entry_path(key), fs::perms::group_write, fs::perm_options::add);
    const StderrCapture capture;
    CHECK_FALSE(cache.load(key).has_value());
    CHECK_FALSE(cache.usable());
    CHECK(fs::exists(cache.entry_path(key)));  // not ours to judge: left alone
    CHECK(capture.warnings() == 1);
    CHECK_THAT(capture.text(), Catch::Contains(cache.entry_path(key).string()) &&
                                   Catch::Contains("writable by its group"));
    const auto verified = cache.verify();
    REQUIRE(verified.size() == 1);
    CHECK_FALSE(verified[0].valid);
    CHECK_THAT(verified[0].problem, Catch::Contains("writable"));
  }
  SECTION("entry or directory owned by another user") {
    if (::geteuid() != 0) {
      WARN("not root: cannot chown to another user here");
      return;
    }
    DiskCache cache(config_for(tmp.path()));
    REQUIRE(::chown(cache.entry_path(key).c_str(), 4242, 4242) == 0);
    const StderrCapture capture;
    CHECK_FALSE(cache.load(key).has_value());
    CHECK_FALSE(cache.usable());
    CHECK_THAT(capture.text(), Catch::Contains("owned by uid 4242"));
    REQUIRE(::chown(tmp.path().c_str(), 4242, 4242) == 0);
    CHECK_FALSE(DiskCache(config_for(tmp.path())).usable());
  }
}

TEST_CASE("the byte cap evicts least-recently-used entries, never the one just stored", "[cache]") {
  const TempDir tmp;
  const LogLevelScope level(LogLevel::warn);
  const CacheKey a = make_key("lru-a"), b = make_key("lru-b"), c = make_key("lru-c"),
                 d = make_key("lru-d"), huge = make_key("lru-huge");
  std::uint64_t entry_bytes = 0;
  {
    DiskCache probe(config_for(tmp.path()));
    probe.store(a, payload_for("a", 1000));
    entry_bytes = probe.list().at(0).file_bytes;
    probe.clear();
  }
  // Room for three entries, not four (all labels and texts have the same length).
  DiskCache cache(config_for(tmp.path(), 3 * entry_bytes + entry_bytes / 2));
  cache.store(a, payload_for("a", 1000));
  cache.store(b, payload_for("b", 1000));
  cache.store(c, payload_for("c", 1000));
  REQUIRE(cache.list().size() == 3);
  REQUIRE(cache.load(a).has_value());  // a is now the most recently used
  cache.store(d, payload_for("d", 1000));

  auto labels = [&] {
    std::vector<std::string> out;
    for (const auto& e : cache.list()) out.push_back(e.label);
    std::sort(out.begin(), out.end());
    return out;
  };
  CHECK(labels() == std::vector<std::string>{"lru-a", "lru-c", "lru-d"});
  CHECK_FALSE(cache.load(b).has_value());
  CHECK(cache.load(a) == payload_for("a", 1000));

  // An entry bigger than the whole cap still stays: it was just compiled.
  cache.store(huge, payload_for("huge", 4 * entry_bytes));
  CHECK(labels() == std::vector<std::string>{"lru-huge"});
  CHECK(cache.load(huge).has_value());

  // gc enforces a (smaller) cap too, and reports the bytes it freed.
  DiskCache uncapped(config_for(tmp.path()));
  uncapped.store(a, payload_for("a", 1000));
  uncapped.store(c, payload_for("c", 1000));
  const std::uint64_t huge_bytes = fs::file_size(cache.entry_path(huge));
  DiskCache smaller(config_for(tmp.path(), 2 * entry_bytes + entry_bytes / 2));
  CHECK(smaller.gc() == huge_bytes);
  CHECK(labels() == std::vector<std::string>{"lru-a", "lru-c"});
}

TEST_CASE("compile failures leave evidence in failed/ or, when unusable, under TMPDIR", "[cache]") {
  const TempDir tmp;
  const LogLevelScope level(LogLevel::warn);
  const CacheKey key = make_key("broken/kernel");
  auto check_evidence = [&](const fs::path& dir) {
    CHECK(read_file(dir / "source.cu") == "__global__ void k() { oops }");
    CHECK(read_file(dir / "options.txt") == "--gpu-architecture=sm_90\n-std=c++17");
    CHECK(read_file(dir / "log.txt") == "error: expected a ';'");
    const std::string key_txt = read_file(dir / "key.txt");
    CHECK_THAT(key_txt, Catch::Contains("id: " + key.id) &&
                            Catch::Contains("label: broken/kernel") && Catch::Contains(key.text) &&
                            Catch::Contains("library: marlinrt"));
    CHECK(mode_of(dir) == 0700);
  };
  SECTION("usable cache: <dir>/failed/<id>/") {
    DiskCache cache(config_for(tmp.path() / "cache"));
    const StderrCapture capture;
    cache.record_failure(key, "__global__ void k() { oops }",
                         "--gpu-architecture=sm_90\n-std=c++17", "error: expected a ';'");
    const fs::path dir = tmp.path() / "cache" / "failed" / key.id;
    check_evidence(dir);
    CHECK(capture.warnings() == 1);
    CHECK_THAT(capture.text(), Catch::Contains(dir.string()));
    CHECK(cache.usable());
  }
  SECTION("unusable cache: $TMPDIR/marlinrt-failed-<uid>/<id>/") {
    const char* old = std::getenv("TMPDIR");
    const std::optional<std::string> saved = old ? std::optional<std::string>(old) : std::nullopt;
    ::setenv("TMPDIR", (tmp.path() / "tmpdir").c_str(), 1);
    fs::create_directory(tmp.path() / "tmpdir");
    write_file(tmp.path() / "file", "");
    std::optional<StderrCapture> degrade_warning(std::in_place);
    DiskCache cache(config_for(tmp.path() / "file" / "cache"));  // ENOTDIR: unusable
    REQUIRE_FALSE(cache.usable());
    degrade_warning.reset();
    {
      const StderrCapture capture;
      cache.record_failure(key, "__global__ void k() { oops }",
                           "--gpu-architecture=sm_90\n-std=c++17", "error: expected a ';'");
      const fs::path dir =
          tmp.path() / "tmpdir" / ("marlinrt-failed-" + std::to_string(::geteuid())) / key.id;
      check_evidence(dir);
      CHECK(capture.warnings() == 1);
      CHECK_THAT(capture.text(), Catch::Contains(dir.string()) && Catch::Contains("not usable"));
    }
    {
      // Someone else's (writable) folder in the shared temp dir is not used.
      const fs::path planted =
          tmp.path() / "tmpdir" / ("marlinrt-failed-" + std::to_string(::geteuid()));
      fs::remove_all(planted);
      fs::create_directory(planted);
      fs::permissions(planted, fs::perms::all);
      const StderrCapture capture;
      CHECK_NOTHROW(cache.record_failure(key, "src", "opts", "log"));
      CHECK_FALSE(fs::exists(planted / key.id));
      CHECK_THAT(capture.text(), Catch::Contains("could not be kept"));
    }
    if (saved) {
      ::setenv("TMPDIR", saved->c_str(), 1);
    } else {
      ::unsetenv("TMPDIR");
    }
  }
}

TEST_CASE("list, verify, gc and clear maintain the cache", "[cache]") {
  const TempDir tmp;
  const LogLevelScope level(LogLevel::warn);
  DiskCache cache(config_for(tmp.path()));
  const CacheKey a = make_key("keep-a"), b = make_key("keep-b"), bad = make_key("flipped");
  cache.store(a, payload_for("a"));
  cache.store(b, payload_for("b"));
  cache.store(bad, payload_for("bad"));
  std::string damaged = read_file(cache.entry_path(bad));
  damaged.back() ^= 0x40;
  write_file(cache.entry_path(bad), damaged);

  // list() reads headers only; verify() checks every byte.
  CHECK(cache.list().size() == 3);
  for (const auto& e : cache.list()) CHECK(e.valid);
  const auto verified = cache.verify();
  REQUIRE(verified.size() == 3);
  int invalid = 0;
  for (const auto& e : verified) {
    if (e.valid) continue;
    ++invalid;
    CHECK(e.id == bad.id);
    CHECK(e.label == "flipped");
    CHECK_THAT(e.problem, Catch::Contains("payload checksum"));
  }
  CHECK(invalid == 1);

  // Temp files: an abandoned one (old) goes, one being written (fresh) stays.
  const fs::path shard = cache.entry_path(a).parent_path();
  const fs::path stale = shard / (".tmp-" + a.id + "-1-0000000000000001");
  const fs::path fresh = shard / (".tmp-" + a.id + "-2-0000000000000002");
  write_file(stale, std::string(100, 's'));
  write_file(fresh, std::string(50, 'f'));
  fs::last_write_time(stale, fs::file_time_type::clock::now() - std::chrono::hours(2));
  // Lock files: an idle one goes, a held one stays.
  { auto idle = cache.lock(a); }
  auto held = cache.lock(b);
  REQUIRE(held.held());

  const std::uint64_t bad_bytes = fs::file_size(cache.entry_path(bad));
  CHECK(cache.gc() == bad_bytes + 100);
  CHECK_FALSE(fs::exists(cache.entry_path(bad)));
  CHECK_FALSE(fs::exists(stale));
  CHECK(fs::exists(fresh));
  CHECK(names_in(tmp.path() / "locks") == std::vector<std::string>{b.id + ".lock"});
  for (const auto& e : cache.verify()) CHECK(e.valid);
  CHECK(cache.load(a) == payload_for("a"));

  held.release();
  {
    const StderrCapture capture;
    cache.record_failure(bad, "src", "opts", "log");
  }
  CHECK(fs::exists(tmp.path() / "failed" / bad.id));
  CHECK(cache.clear() == 2);
  CHECK(cache.list().empty());
  CHECK_FALSE(fs::exists(tmp.path() / "failed"));
  CHECK(names_in(tmp.path() / "locks").empty());
  CHECK(cache.usable());
  cache.store(a, "after clear");
  CHECK(cache.load(a) == std::string("after clear"));

  // A cache that was never created lists nothing and does not throw.
  const StderrCapture capture;
  write_file(tmp.path() / "file-in-the-way", "");
  DiskCache missing(config_for(tmp.path() / "file-in-the-way" / "x"));
  CHECK(missing.list().empty());
  CHECK(missing.gc() == 0);
  CHECK(missing.clear() == 0);
}

TEST_CASE("compile locks exclude other processes and degrade to a no-op lock", "[cache]") {
  const TempDir tmp;
  const LogLevelScope level(LogLevel::warn);
  DiskCache cache(config_for(tmp.path()));
  const CacheKey key = make_key("locked"), other = make_key("unrelated");
  {
    CompileLock lock = cache.lock(key);
    CHECK(lock.held());
    CHECK(fs::exists(tmp.path() / "locks" / (key.id + ".lock")));
    CompileLock moved = std::move(lock);
    CHECK(moved.held());
    CHECK_FALSE(lock.held());  // NOLINT(bugprone-use-after-move): moved-from is empty
  }

  // The child holds the key until the parent tells it to let go; no step
  // below depends on how fast this machine is.
  int ready[2], release[2];
  REQUIRE(::pipe(ready) == 0);
  REQUIRE(::pipe(release) == 0);
  std::fflush(nullptr);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(ready[0]);
    ::close(release[1]);
    DiskCache theirs(config_for(tmp.path()));
    CompileLock lock = theirs.lock(key);
    const char byte = lock.held() ? 'y' : 'n';
    if (::write(ready[1], &byte, 1) != 1) ::_exit(2);
    char go = 0;
    if (::read(release[0], &go, 1) < 0) ::_exit(3);
    ::_exit(0);  // exiting releases the lock
  }
  ::close(ready[1]);
  ::close(release[0]);
  char byte = 0;
  REQUIRE(::read(ready[0], &byte, 1) == 1);
  ::close(ready[0]);
  CHECK(byte == 'y');
  { CHECK(cache.lock(other).held()); }  // other keys are not blocked

  std::atomic<bool> acquired{false};
  CompileLock mine;
  std::thread waiter([&] {
    mine = cache.lock(key);
    acquired = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK_FALSE(acquired.load());  // still blocked while the child holds the key
  const char go = 'g';
  CHECK(::write(release[1], &go, 1) == 1);
  ::close(release[1]);
  waiter.join();
  CHECK(acquired.load());
  CHECK(mine.held());
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  mine.release();

  // The lock file cannot be created: a lock holding nothing, never an error.
  fs::remove_all(tmp.path() / "locks");
  write_file(tmp.path() / "locks", "not a directory");
  CompileLock none;
  CHECK_NOTHROW(none = cache.lock(key));
  CHECK_FALSE(none.held());
  CHECK(cache.usable());
}

TEST_CASE("8 processes compile each of 3 keys exactly once", "[cache]") {
  const TempDir tmp;
  const LogLevelScope level(LogLevel::warn);
  const fs::path dir = tmp.path() / "cache";
  const fs::path compile_log = tmp.path() / "compiles.log";
  const std::vector<std::string> names = {"key-one", "key-two", "key-three"};
  std::vector<pid_t> children;
  std::vector<int> pipes;
  std::fflush(nullptr);
  for (int p = 0; p < 8; ++p) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      std::string report;
      try {
        DiskCache cache(config_for(dir));
        for (int round = 0; round < 3; ++round) {
          const std::string& name = names[static_cast<std::size_t>(p + round) % names.size()];
          const CacheKey key = make_key(name);
          const std::string expected = payload_for(name, 20000);
          CompileLock lock = cache.lock(key);
          if (!lock.held()) report += "lock not held; ";
          std::optional<std::string> got = cache.load(key);
          if (!got) {
            // The fake compile: slow enough that unlocked racers would overlap.
            const int fd = ::open(compile_log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
            const std::string line = name + "\n";
            if (::write(fd, line.data(), line.size()) < 0) report += "log write failed; ";
            ::close(fd);
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            cache.store(key, expected);
            got = expected;
          }
          if (*got != expected) report += "wrong bytes for " + name + "; ";
          if (cache.load(key) != expected) report += "reload failed for " + name + "; ";
        }
        if (!cache.usable()) report += "cache degraded; ";
      } catch (const std::exception& e) {
        report += std::string("threw: ") + e.what();
      }
      if (::write(fds[1], report.data(), report.size()) < 0) ::_exit(3);
      ::_exit(0);
    }
    ::close(fds[1]);
    children.push_back(pid);
    pipes.push_back(fds[0]);
  }
  for (std::size_t i = 0; i < children.size(); ++i) {
    std::string report;
    char buf[512];
    for (ssize_t n; (n = ::read(pipes[i], buf, sizeof buf)) > 0;) {
      report.append(buf, static_cast<std::size_t>(n));
    }
    ::close(pipes[i]);
    int status = 0;
    ::waitpid(children[i], &status, 0);
    INFO("process " << i << ": " << report);
    CHECK(report.empty());
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  }
  std::map<std::string, int> compiles;
  std::istringstream lines(read_file(compile_log));
  for (std::string line; std::getline(lines, line);) ++compiles[line];
  CHECK(compiles == std::map<std::string, int>{{"key-one", 1}, {"key-two", 1}, {"key-three", 1}});
  const auto verified = DiskCache(config_for(dir)).verify();
  CHECK(verified.size() == 3);
  for (const auto& e : verified) {
    INFO(e.path << ": " << e.problem);
    CHECK(e.valid);
  }
}

TEST_CASE("gc and clear in one process never break loads and stores in another", "[cache]") {
  const TempDir tmp;
  const LogLevelScope level(LogLevel::warn);
  int stop[2];
  REQUIRE(::pipe(stop) == 0);
  std::fflush(nullptr);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(stop[1]);
    ::fcntl(stop[0], F_SETFL, O_NONBLOCK);
    int rc = 0;
    try {
      DiskCache janitor(config_for(tmp.path(), 8000));  // a small cap: eviction runs too
      for (int i = 0;; ++i) {
        char byte;
        if (::read(stop[0], &byte, 1) == 0) break;  // parent closed the pipe
        if (i % 3 == 2) {
          janitor.clear();
        } else {
          janitor.gc();
        }
      }
    } catch (...) {
      rc = 1;
    }
    ::_exit(rc);
  }
  ::close(stop[0]);
  DiskCache cache(config_for(tmp.path()));
  std::vector<CacheKey> keys;
  for (int i = 0; i < 4; ++i) keys.push_back(make_key("busy-" + std::to_string(i)));
  int hits = 0, misses = 0, wrong = 0;
  // At least a second of overlap, and long enough to have seen both outcomes.
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  try {
    for (int i = 0; Clock::now() - start < std::chrono::seconds(1) || hits == 0 || misses == 0;
         ++i) {
      if (Clock::now() - start > std::chrono::seconds(20)) break;
      const CacheKey& key = keys[static_cast<std::size_t>(i) % keys.size()];
      const std::string expected = payload_for(key.label, 3000);
      for (int attempt = 0; attempt < 2; ++attempt) {  // the second load usually hits
        if (auto got = cache.load(key)) {
          ++hits;
          if (*got != expected) ++wrong;
        } else {
          ++misses;
          cache.store(key, expected);
        }
      }
    }
  } catch (const std::exception& e) {
    FAIL("load/store threw during concurrent gc: " << e.what());
  }
  ::close(stop[1]);
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  INFO("hits " << hits << ", misses " << misses);
  CHECK(wrong == 0);
  CHECK(hits > 0);  // the loop above runs until it saw both, so this holds on slow machines
  CHECK(misses > 0);
  CHECK(cache.usable());  // no store ever failed because of the janitor
  for (const auto& e : cache.verify()) {
    INFO(e.path << ": " << e.problem);
    CHECK(e.valid);
  }
}
