// Where the kernel cache lives and how it may be used, from MARLINRT_CACHE_*.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string_view>

namespace marlinrt::detail {

struct CacheConfig {
  // MARLINRT_CACHE_DIR, else $XDG_CACHE_HOME/marlinrt, else ~/.cache/marlinrt
  // (always absolute; empty only when no home directory can be found).
  std::filesystem::path dir;
  bool disabled = false;          // MARLINRT_CACHE_DISABLE=1|true|on|yes
  std::uint64_t max_bytes = 0;    // MARLINRT_CACHE_MAX_BYTES, 0 = no cap (123, 64K, 512M, 2G)
  bool allow_shared_dir = false;  // MARLINRT_CACHE_ALLOW_SHARED=1: accept dirs others can write

  // Throws Error(invalid_argument) naming the variable when a value is junk.
  static CacheConfig from_env();
};

// "123", "64K", "512M", "2G", "1T" (binary multiples; an optional trailing
// "B" or "iB" is accepted: "64KiB", "512MB"). Throws Error(invalid_argument)
// whose message names `what` (e.g. the variable) on anything else or overflow.
std::uint64_t parse_byte_size(std::string_view text, std::string_view what);

// "1|true|on|yes" -> true, "0|false|off|no" or empty -> false (any case).
// Throws Error(invalid_argument) naming `what` otherwise.
bool parse_switch(std::string_view text, std::string_view what);

}  // namespace marlinrt::detail
