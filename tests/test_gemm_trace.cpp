// The GEMM trace hook: which buffer linear() hands to the kernel, and its size check.
#include <catch2/catch.hpp>

#include "kernel_templates/gemm_params.h"
#include "marlinrt/error.hpp"
#include "runtime/gemm_trace.hpp"

using namespace marlinrt;
using namespace marlinrt::detail;

TEST_CASE("gemm trace: null unless set, and the buffer must cover every block") {
  struct Unset {  // the hook is process-wide: leave it off for the other tests
    ~Unset() { set_gemm_trace(nullptr, 0); }
  } unset;
  CHECK(gemm_trace_for(100000) == nullptr);

  unsigned long long fake[1];  // never dereferenced on the host
  set_gemm_trace(fake, 3 * kern::kTraceSlots);
  CHECK(gemm_trace_for(3) == fake);
  try {
    gemm_trace_for(4);
    FAIL("a buffer for 3 blocks was accepted for 4");
  } catch (const Error& e) {
    CHECK(e.status() == Status::invalid_argument);
  }

  set_gemm_trace(nullptr, 3 * kern::kTraceSlots);
  CHECK(gemm_trace_for(4) == nullptr);
}
