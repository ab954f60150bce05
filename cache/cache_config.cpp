#include "cache/cache_config.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <limits>
#include <string>
#include <system_error>
#include <vector>

#include "runtime/fail.hpp"

namespace marlinrt::detail {
namespace {

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// An unset variable and an empty one mean the same: "use the default".
const char* env_value(const char* name) {
  const char* value = std::getenv(name);
  return (value != nullptr && *value != '\0') ? value : nullptr;
}

std::filesystem::path home_directory() {
  if (const char* home = env_value("HOME")) return home;
  // No $HOME (daemons, some containers): ask the password database.
  long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buffer(size > 0 ? static_cast<std::size_t>(size) : 16384);
  passwd entry{};
  passwd* found = nullptr;
  if (::getpwuid_r(::geteuid(), &entry, buffer.data(), buffer.size(), &found) == 0 &&
      found != nullptr && found->pw_dir != nullptr && found->pw_dir[0] != '\0') {
    return found->pw_dir;
  }
  return {};
}

std::filesystem::path absolute_or_empty(const std::filesystem::path& path) {
  std::error_code ec;
  auto absolute = std::filesystem::absolute(path, ec);
  return ec ? path : absolute.lexically_normal();
}

}  // namespace

std::uint64_t parse_byte_size(std::string_view text, std::string_view what) {
  auto junk = [&]() -> std::uint64_t {
    fail(Status::invalid_argument,
         "{}='{}' is not a byte count: expected a whole number with an optional K, M, G or T "
         "suffix (binary multiples), e.g. 123, 64K, 512M, 2G",
         what, text);
  };
  std::size_t pos = 0;
  std::uint64_t value = 0;
  constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
    const auto digit = static_cast<std::uint64_t>(text[pos] - '0');
    if (value > (kMax - digit) / 10) {
      fail(Status::invalid_argument, "{}='{}' is too large: expected at most {} bytes", what, text,
           kMax);
    }
    value = value * 10 + digit;
    ++pos;
  }
  if (pos == 0) return junk();
  std::string suffix = lowercase(text.substr(pos));
  unsigned shift = 0;
  if (!suffix.empty()) {
    switch (suffix[0]) {
      case 'k':
        shift = 10;
        break;
      case 'm':
        shift = 20;
        break;
      case 'g':
        shift = 30;
        break;
      case 't':
        shift = 40;
        break;
      case 'b':
        shift = 0;
        break;
      default:
        return junk();
    }
    std::string_view rest = std::string_view(suffix).substr(suffix[0] == 'b' ? 0 : 1);
    if (!(rest.empty() || rest == "b" || (shift != 0 && rest == "ib"))) return junk();
  }
  if (shift != 0 && value > (kMax >> shift)) {
    fail(Status::invalid_argument, "{}='{}' is too large: expected at most {} bytes", what, text,
         kMax);
  }
  return value << shift;
}

bool parse_switch(std::string_view text, std::string_view what) {
  const std::string value = lowercase(text);
  if (value == "1" || value == "true" || value == "on" || value == "yes") return true;
  if (value.empty() || value == "0" || value == "false" || value == "off" || value == "no") {
    return false;
  }
  fail(Status::invalid_argument,
       "{}='{}' is not a switch: expected 1, true, on, yes or 0, false, "
       "off, no",
       what, text);
}

CacheConfig CacheConfig::from_env() {
  CacheConfig config;
  if (const char* dir = env_value("MARLINRT_CACHE_DIR")) {
    config.dir = absolute_or_empty(dir);
  } else if (const char* xdg = env_value("XDG_CACHE_HOME");
             xdg != nullptr && std::filesystem::path(xdg).is_absolute()) {
    // The XDG spec says relative values are invalid and must be ignored.
    config.dir = std::filesystem::path(xdg).lexically_normal() / "marlinrt";
  } else if (auto home = home_directory(); !home.empty()) {
    config.dir = absolute_or_empty(home / ".cache" / "marlinrt");
  }
  if (const char* value = std::getenv("MARLINRT_CACHE_DISABLE")) {
    config.disabled = parse_switch(value, "MARLINRT_CACHE_DISABLE");
  }
  if (const char* value = env_value("MARLINRT_CACHE_MAX_BYTES")) {
    config.max_bytes = parse_byte_size(value, "MARLINRT_CACHE_MAX_BYTES");
  }
  if (const char* value = std::getenv("MARLINRT_CACHE_ALLOW_SHARED")) {
    config.allow_shared_dir = parse_switch(value, "MARLINRT_CACHE_ALLOW_SHARED");
  }
  return config;
}

}  // namespace marlinrt::detail
