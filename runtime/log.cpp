#include "runtime/log.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>

namespace marlinrt::detail {
namespace {

constexpr int kUnset = -1;
constexpr LogLevel kDefaultLevel = LogLevel::warn;

std::atomic<int>& level_slot() noexcept {
  static std::atomic<int> slot{kUnset};
  return slot;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

LogLevel level_from_env() noexcept {
  const char* text = std::getenv("MARLINRT_LOG");
  if (text == nullptr || *text == '\0') return kDefaultLevel;
  if (auto level = parse_log_level(text)) return *level;
  try {
    warn_once("MARLINRT_LOG",
              std::string("MARLINRT_LOG='") + text +
                  "' is not a log level: expected error, warn, info or debug; using warn");
  } catch (...) {
  }
  return kDefaultLevel;
}

}  // namespace

std::optional<LogLevel> parse_log_level(std::string_view text) noexcept {
  if (equals_ignoring_case(text, "error")) return LogLevel::error;
  if (equals_ignoring_case(text, "warn") || equals_ignoring_case(text, "warning")) {
    return LogLevel::warn;
  }
  if (equals_ignoring_case(text, "info")) return LogLevel::info;
  if (equals_ignoring_case(text, "debug")) return LogLevel::debug;
  return std::nullopt;
}

std::string_view log_level_name(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::error:
      return "error";
    case LogLevel::warn:
      return "warning";
    case LogLevel::info:
      return "info";
    case LogLevel::debug:
      return "debug";
  }
  return "?";
}

LogLevel log_level() noexcept {
  int value = level_slot().load(std::memory_order_relaxed);
  if (value == kUnset) {
    // Set before reading the environment so that a warning about a bad
    // MARLINRT_LOG (logged at warn) does not recurse into this path.
    int expected = kUnset;
    level_slot().compare_exchange_strong(expected, static_cast<int>(kDefaultLevel));
    if (expected == kUnset) level_slot().store(static_cast<int>(level_from_env()));
    value = level_slot().load(std::memory_order_relaxed);
  }
  return static_cast<LogLevel>(value);
}

bool log_enabled(LogLevel level) noexcept {
  return static_cast<int>(level) <= static_cast<int>(log_level());
}

void set_log_level(LogLevel level) noexcept { level_slot().store(static_cast<int>(level)); }

void reload_log_level_from_env() noexcept {
  level_slot().store(static_cast<int>(kDefaultLevel));
  level_slot().store(static_cast<int>(level_from_env()));
}

void write_log_line(LogLevel level, std::string_view message) noexcept {
  try {
    std::string line = "marlinrt: ";
    line += log_level_name(level);
    line += ": ";
    line += message;
    line += '\n';
    const char* data = line.data();
    std::size_t left = line.size();
    while (left > 0) {
      ssize_t n = ::write(STDERR_FILENO, data, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      data += n;
      left -= static_cast<std::size_t>(n);
    }
  } catch (...) {
  }
}

void warn_once(std::string_view id, std::string_view message) {
  static std::mutex mutex;
  static std::set<std::string, std::less<>> seen;
  {
    std::lock_guard lock(mutex);
    if (seen.find(id) != seen.end()) return;
    seen.emplace(id);
  }
  if (log_enabled(LogLevel::warn)) write_log_line(LogLevel::warn, message);
}

}  // namespace marlinrt::detail
