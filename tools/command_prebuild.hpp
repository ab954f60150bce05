// `marlinrt prebuild`: fill the kernel cache ahead of time (no GPU needed).
#pragma once

#include <string>
#include <vector>

namespace marlinrt::cli {

struct PrebuildOptions {
  // Kernel key texts. A key without its final "/sm_XX" part is built for every target arch.
  std::vector<std::string> keys;
  std::string shapes_file;         // JSON model shapes (see tools/shapes_file.hpp), or empty
  std::string replay_file;         // usage log written under MARLINRT_RECORD, or empty
  std::vector<std::string> archs;  // "sm_80", ... (comma lists allowed); empty: the GPUs present
  int jobs = 0;                    // parallel compiles; 0 = hardware threads
  int sm_count = 0;                // SM count the dispatch assumes; 0 = the GPU's or a default
  bool verbose = false;            // one line per kernel
  bool dry_run = false;            // print the keys, one per line, and compile nothing
};

// Returns the exit status: 0 when every kernel is in the cache, 1 when any failed.
// Throws Error for bad input (nothing is compiled then).
int run_prebuild(const PrebuildOptions& options);

}  // namespace marlinrt::cli
