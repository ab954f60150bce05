#include "runtime/gemm_trace.hpp"

#include "kernel_templates/gemm_params.h"
#include "runtime/fail.hpp"

namespace marlinrt::detail {
namespace {

// Plain globals: the hook is single-threaded by contract (see the header).
unsigned long long* g_buffer = nullptr;
std::size_t g_slots = 0;

}  // namespace

void set_gemm_trace(unsigned long long* device_buffer, std::size_t slots) {
  g_buffer = device_buffer;
  g_slots = device_buffer != nullptr ? slots : 0;
}

unsigned long long* gemm_trace_for(int blocks) {
  if (g_buffer == nullptr) return nullptr;
  const std::size_t needed = static_cast<std::size_t>(blocks) * kern::kTraceSlots;
  if (g_slots < needed) {
    fail(Status::invalid_argument,
         "the GEMM trace buffer holds {} values, but this launch of {} blocks needs {} ({} per "
         "block)",
         g_slots, blocks, needed, kern::kTraceSlots);
  }
  return g_buffer;
}

}  // namespace marlinrt::detail
