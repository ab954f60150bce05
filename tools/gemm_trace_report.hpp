// `bench dense --trace`: the dense GEMM's per-block timeline (GemmTraceSlot in
// kernel_templates/gemm_params.h) as trace.csv and one summary line per case.
//
// trace.csv columns: shape,m,dtype,block,event,t_ns
//   shape   NxK
//   event   a trace slot: 0 entry, 1 loads issued, 2 first data, 3/4/5 segment 0 finish
//           start/arrived/done, 6/7/8 the same for segment 1, 9 end; then 10 last-arriver
//           mask (bit s: last in segment s), 11 units, 12 finish_segment calls
//   t_ns    events 0-9: ns after the launch's earliest entry (event 0 of any block), only
//           the slots the kernel wrote; events 10-12: the raw value, for every block
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "marlinrt/dtype.hpp"

namespace marlinrt::cli {

// Blocks a trace buffer has room for: more than any dense plan launches (at most 2 per SM).
inline constexpr std::size_t kTraceBlocks = 4096;

// Makes this process compile the traced kernels: appends -DMARLINRT_GEMM_TRACE to
// MARLINRT_NVRTC_OPTIONS unless it is there. The runtime reads that variable once, when the
// first kernel is requested, so this must run before any prepare or linear call.
void enable_gemm_trace_build();

class GemmTraceReport {
 public:
  // Creates (truncates) the CSV and writes its header.
  explicit GemmTraceReport(const std::filesystem::path& csv_path);

  // One traced launch: `slots` is the downloaded buffer (kTraceBlocks * kTraceSlots values,
  // zero where nothing was written). Appends its rows and prints the summary line. Throws
  // when no block wrote anything (the kernels are not the traced build).
  void add(std::int64_t n, std::int64_t k, std::int64_t m, DType dtype,
           const std::vector<unsigned long long>& slots);

 private:
  std::filesystem::path path_;
  std::ofstream csv_;
};

}  // namespace marlinrt::cli
