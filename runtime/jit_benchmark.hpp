// `marlinrt bench jit`: what the JIT costs, measured on the self-test kernel.
#pragma once

#include <cstddef>
#include <string>

namespace marlinrt::detail {

struct JitBenchmarkOptions {
  int arch = 0;                   // target; 0 = the current GPU's (required without a GPU)
  std::size_t launches = 100000;  // per launch path; 0 skips the launch measurement
  std::size_t batch = 100;        // launches timed together (one host-clock sample)
};

struct JitBenchmarkResult {
  std::string target;         // "sm_90"
  std::string nvrtc_version;  // "13.0"
  bool gpu = false;           // false: host-only run (no load, no launches)
  std::string device;         // GPU name when gpu
  // Fresh temporary cache: render + NVRTC + store (+ module load with a GPU).
  double cold_compile_ms = 0.0;
  // A new provider on the same directory (a new process, as far as the JIT can tell):
  // read + check the entry (+ module load with a GPU).
  double warm_disk_hit_ms = 0.0;
  // Host time per launch, median over batches: get_kernel() + launch() through the
  // registry, versus cuLaunchKernel on the same function.
  std::size_t launches = 0;
  double registry_launch_ns = 0.0;
  double raw_launch_ns = 0.0;
};

// Uses a temporary cache directory (removed afterwards); the process-wide cache and
// counters are untouched. Throws Error when a step fails.
JitBenchmarkResult run_jit_benchmark(const JitBenchmarkOptions& options);

}  // namespace marlinrt::detail
