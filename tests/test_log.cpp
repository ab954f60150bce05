// The logger: MARLINRT_LOG levels, the "marlinrt: " prefix, warn_once.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "runtime/log.hpp"

using namespace marlinrt::detail;

namespace {

// Sends fd 2 to an anonymous temp file for one scope; text() reads it back.
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    char name[] = "/tmp/marlinrt-log-test-XXXXXX";
    file_ = ::mkstemp(name);
    ::unlink(name);
    saved_ = ::dup(STDERR_FILENO);
    ::dup2(file_, STDERR_FILENO);
  }
  ~StderrCapture() {
    std::fflush(stderr);
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    ::close(file_);
  }
  std::string text() const {
    std::string out;
    char buf[4096];
    for (off_t at = 0;; at += 4096) {
      const ssize_t n = ::pread(file_, buf, sizeof buf, at);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }

 private:
  int file_ = -1;
  int saved_ = -1;
};

// Restores the process-wide level after a test changes it.
struct LevelGuard {
  LogLevel saved = log_level();
  ~LevelGuard() { set_log_level(saved); }
};

}  // namespace

TEST_CASE("log levels parse and filter", "[cache][log]") {
  CHECK(parse_log_level("error") == LogLevel::error);
  CHECK(parse_log_level("warn") == LogLevel::warn);
  CHECK(parse_log_level("WARNING") == LogLevel::warn);
  CHECK(parse_log_level("Info") == LogLevel::info);
  CHECK(parse_log_level("debug") == LogLevel::debug);
  CHECK_FALSE(parse_log_level("verbose").has_value());
  CHECK_FALSE(parse_log_level("").has_value());

  const LevelGuard guard;
  set_log_level(LogLevel::warn);
  CHECK(log_enabled(LogLevel::error));
  CHECK(log_enabled(LogLevel::warn));
  CHECK_FALSE(log_enabled(LogLevel::info));
  {
    const StderrCapture capture;
    log(LogLevel::warn, "disk {} is {}", "/x", 42);
    log(LogLevel::info, "not shown {}", 1);
    log(LogLevel::debug, "not shown either");
    log(LogLevel::error, "broken");
    CHECK(capture.text() == "marlinrt: warning: disk /x is 42\nmarlinrt: error: broken\n");
  }
  set_log_level(LogLevel::debug);
  {
    const StderrCapture capture;
    log(LogLevel::debug, "detail {}", std::string("here"));
    log(LogLevel::info, "fact");
    CHECK(capture.text() == "marlinrt: debug: detail here\nmarlinrt: info: fact\n");
  }
  set_log_level(LogLevel::error);
  {
    const StderrCapture capture;
    log(LogLevel::warn, "hidden");
    CHECK(capture.text().empty());
  }
}

TEST_CASE("warn_once prints each id once per process", "[cache][log]") {
  const LevelGuard guard;
  set_log_level(LogLevel::warn);
  const StderrCapture capture;
  warn_once("test_log.id-a", "first a");
  warn_once("test_log.id-a", "second a");
  warn_once("test_log.id-b", "first b");
  warn_once("test_log.id-a", "third a");
  CHECK(capture.text() == "marlinrt: warning: first a\nmarlinrt: warning: first b\n");
}

TEST_CASE("MARLINRT_LOG selects the level; junk is reported and ignored", "[cache][log]") {
  const LevelGuard guard;
  const char* old = std::getenv("MARLINRT_LOG");
  const std::optional<std::string> saved = old ? std::optional<std::string>(old) : std::nullopt;

  ::setenv("MARLINRT_LOG", "debug", 1);
  reload_log_level_from_env();
  CHECK(log_level() == LogLevel::debug);
  ::setenv("MARLINRT_LOG", "error", 1);
  reload_log_level_from_env();
  CHECK(log_level() == LogLevel::error);
  ::unsetenv("MARLINRT_LOG");
  reload_log_level_from_env();
  CHECK(log_level() == LogLevel::warn);
  {
    const StderrCapture capture;
    ::setenv("MARLINRT_LOG", "chatty", 1);
    reload_log_level_from_env();
    CHECK(log_level() == LogLevel::warn);
    CHECK(capture.text() ==
          "marlinrt: warning: MARLINRT_LOG='chatty' is not a log level: expected error, warn, "
          "info or debug; using warn\n");
  }
  if (saved) {
    ::setenv("MARLINRT_LOG", saved->c_str(), 1);
  } else {
    ::unsetenv("MARLINRT_LOG");
  }
}
