// `marlinrt cache list|stats|verify|gc|clear`: inspect and maintain the kernel cache.
#pragma once

namespace marlinrt::cli {

enum class CacheAction { list, stats, verify, gc, clear };

struct CacheOptions {
  CacheAction action = CacheAction::list;
  bool json = false;  // list and stats: machine-readable output
};

// Exit status: 0, or 1 when `verify` found invalid entries.
int run_cache(const CacheOptions& options);

}  // namespace marlinrt::cli
