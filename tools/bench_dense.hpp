// `marlinrt bench dense`: dense NVFP4 linear timings against cuBLAS on the dequantized weights
// and against the GPU's copy bandwidth; writes dense.csv and dense_speedup.png.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "marlinrt/dtype.hpp"

namespace marlinrt::cli {

struct DenseBenchShape {
  std::int64_t n = 0;  // output features
  std::int64_t k = 0;  // input features
  std::string name;    // e.g. "llama3.1-8b qkv"; empty: "NxK"
};

// NVFP4.md's dense GEMM shapes (Llama-3.1-8B, Llama-3.3-70B, Nemotron-3-Nano, DeepSeek-R1).
std::vector<DenseBenchShape> default_dense_bench_shapes();

// Empty lists and non-positive counts select the defaults.
struct BenchDenseOptions {
  std::string output_dir = "bench-out";  // created if missing
  std::vector<DenseBenchShape> shapes;   // default: default_dense_bench_shapes()
  std::vector<std::int64_t> m_values;    // default: 1, 16, 64, 256, 1024, 4096, 16384
  std::vector<DType> dtypes;             // default: bf16, f16
  int warmup = 10;                       // untimed launches per case
  int repetitions = 50;                  // timed launches per case (median reported)
  // Compile the traced GEMM (-DMARLINRT_GEMM_TRACE) and, per case, time one more launch's
  // per-block timeline into <output_dir>/trace.csv (see tools/gemm_trace_report.hpp).
  bool trace = false;
};

// Runs every (shape, M, dtype) case, prints a table to stdout, writes
// <output_dir>/dense.csv and <output_dir>/dense_speedup.png (first dtype; other dtypes get
// dense_speedup_<dtype>.png). Returns 0. Throws marlinrt::Error on bad options (invalid_argument),
// without a GPU (no_device) or when a CUDA call fails (cuda_error).
int run_bench_dense(const BenchDenseOptions& options);

}  // namespace marlinrt::cli
