// The dense GEMM's diagnostic timeline (see GemmTraceSlot in kernel_templates/gemm_params.h):
// a device buffer that linear() hands to the kernel. Only kernels compiled with
// -DMARLINRT_GEMM_TRACE (through MARLINRT_NVRTC_OPTIONS) write it; others ignore it.
//
// A single-threaded diagnostic hook for benchmarks: one process-wide setting, no locking.
// Set it, launch, unset it, all from the thread that calls linear().
#pragma once

#include <cstddef>

namespace marlinrt::detail {

// Every following linear() launch records into `device_buffer` (`slots` values of 64 bits,
// zeroed by the caller); null turns the trace off.
void set_gemm_trace(unsigned long long* device_buffer, std::size_t slots);

// The buffer for a launch of `blocks` blocks: null when no trace is set. Fails with
// invalid_argument when the buffer holds fewer than blocks * kern::kTraceSlots values.
unsigned long long* gemm_trace_for(int blocks);

}  // namespace marlinrt::detail
