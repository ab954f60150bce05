// `marlinrt explain KEY`: what goes into a kernel's cache key, where its entry
// lives, and why a lookup would miss.
#pragma once

#include <string>
#include <vector>

namespace marlinrt::cli {

struct ExplainOptions {
  std::string key;                 // full key, or a key without "/sm_XX" plus --arch
  std::vector<std::string> archs;  // used only when the key has no arch
};

// Exit status: 0 when every explained key would hit the cache, 1 otherwise.
int run_explain(const ExplainOptions& options);

}  // namespace marlinrt::cli
