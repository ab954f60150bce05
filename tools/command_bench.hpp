// `marlinrt bench dense` and `marlinrt bench jit`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace marlinrt::cli {

struct BenchDenseArgs {
  std::string out = "bench-out";    // output directory (dense.csv, dense_speedup.png)
  std::string shapes;               // "NxK,NxK" or a shapes JSON file; empty: NVFP4.md's shapes
  std::vector<std::int64_t> m;      // token counts; empty: the benchmark's default list
  std::vector<std::string> dtypes;  // "bf16", "f16"; empty: both
  int warmup = -1;                  // -1: the benchmark's default
  int reps = -1;
  bool trace = false;  // per-block GEMM timeline into trace.csv (traced kernel build)
};

int run_bench_dense_command(const BenchDenseArgs& args);

struct BenchJitArgs {
  std::vector<std::string> archs;  // target; default: the GPU's (required without a GPU)
  int launches = 100000;           // launches timed for the per-launch overhead; 0 skips it
};

int run_bench_jit_command(const BenchJitArgs& args);

}  // namespace marlinrt::cli
