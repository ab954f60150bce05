// The library's diagnostics: one line per message on stderr, prefixed
// "marlinrt: ", filtered by MARLINRT_LOG=error|warn|info|debug (default warn).
#pragma once

#include <optional>
#include <string_view>
#include <utility>

#include <fmt/core.h>

namespace marlinrt::detail {

enum class LogLevel { error = 0, warn = 1, info = 2, debug = 3 };

// The level in force: MARLINRT_LOG read on first use, or set_log_level().
LogLevel log_level() noexcept;
bool log_enabled(LogLevel level) noexcept;
void set_log_level(LogLevel level) noexcept;
// Re-reads MARLINRT_LOG (tests, and programs that change their environment).
// A value that is not a level is reported once and the default (warn) is used.
void reload_log_level_from_env() noexcept;
// "error", "warn"/"warning", "info", "debug" (any case); nullopt otherwise.
std::optional<LogLevel> parse_log_level(std::string_view text) noexcept;
std::string_view log_level_name(LogLevel level) noexcept;

// Writes "marlinrt: <level>: <message>\n" with one write() so lines from
// concurrent threads and processes never interleave. Never throws.
void write_log_line(LogLevel level, std::string_view message) noexcept;

template <typename... Args>
void log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (!log_enabled(level)) return;
  try {
    write_log_line(level, fmt::format(format, std::forward<Args>(args)...));
  } catch (...) {
    // Logging must never turn a working call into a failing one.
  }
}

// A warning printed at most once per process for each id (e.g. a setting
// that is ignored, which would otherwise be repeated on every call).
void warn_once(std::string_view id, std::string_view message);

}  // namespace marlinrt::detail
