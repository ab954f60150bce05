// linear(): one dense NVFP4 GEMM launch.
#include <cuda.h>

#include <cstdint>
#include <cstdlib>

#include "cache/cache_config.hpp"
#include "kernel_templates/gemm_params.h"
#include "marlinrt/linear.hpp"
#include "runtime/dense_dispatch.hpp"
#include "runtime/device_pointer_checks.hpp"
#include "runtime/driver.hpp"
#include "runtime/fail.hpp"
#include "runtime/gemm_trace.hpp"
#include "runtime/gemm_workspace.hpp"
#include "runtime/kernel_provider.hpp"
#include "runtime/launch.hpp"
#include "runtime/prepared_linear.hpp"

namespace marlinrt {

using namespace detail;

namespace {

// MARLINRT_DENSE_CLUSTERS, MARLINRT_DENSE_PDL: on unless set to a false switch value (off, 0,
// false, no), for measuring.
bool env_switch_on(const char* variable) {
  const char* value = std::getenv(variable);
  return value == nullptr || *value == '\0' || parse_switch(value, variable);
}

}  // namespace

void linear(Stream stream, MatrixView x, const PreparedLinear& w, MutableMatrixView y,
            const LinearOptions& options) {
  (void)options;  // deterministic is the only mode: every reduction has a fixed order
  const auto& p = w.impl();
  const DeviceInfo& dev = current_device();
  if (dev.ordinal != p.device) {
    fail(Status::invalid_argument,
         "the prepared weight lives on device {} but the current device is {}", p.device,
         dev.ordinal);
  }
  const std::int64_t m = x.rows;
  check_device_matrix("x", x, p.activation, -1, p.k, dev.ordinal);
  check_device_matrix("y", y, p.activation, m, p.n, dev.ordinal);
  check_alignment("x", x.data, 16);
  if (x.stride() % 8 != 0) {
    fail(Status::invalid_argument,
         "x has row stride {} elements: it must be a multiple of 8 (16-byte aligned rows)",
         x.stride());
  }
  check_alignment("y", y.data, 2);
  if (m == 0) return;
  if (m > (1 << 30)) fail(Status::invalid_argument, "x has {} rows (at most 2^30)", m);

  static const bool clusters_enabled = env_switch_on("MARLINRT_DENSE_CLUSTERS");
  // sm_90: the kernel may launch while the previous one in the stream finishes, and stream
  // its first weights meanwhile (it waits for that kernel before it reads x or touches the
  // workspace, the locks or y).
  static const bool pdl_enabled = env_switch_on("MARLINRT_DENSE_PDL");
  DensePlan plan = plan_dense(m, p.n_padded, p.k_padded, p.activation, dev.compute_capability,
                              dev.sm_count, dev.max_shared_per_block_optin);
  const LoadedKernel& kernel = get_kernel(plan.key, stream);
  // Clusters only where all of them fit at once (resident_clusters is all zero where the
  // driver cannot launch them).
  if (!clusters_enabled) plan.cluster_blocks = 1;
  fit_clusters(plan, kernel.resident_clusters);
  const GemmWorkspace ws = gemm_workspace(stream, plan.workspace_floats, plan.lock_count);

  kern::GemmParams params{};
  params.a = x.data;
  params.b = p.weights.data();
  params.scales = p.scales.data();
  params.bias = p.bias.empty() ? nullptr : p.bias.data();
  params.c = y.data;
  params.workspace = ws.partials;
  params.locks = ws.locks;
  params.global_scale = p.global_scale;
  params.m = static_cast<int>(m);
  params.n = static_cast<int>(p.n);
  params.k = static_cast<int>(p.k);
  params.n_padded = static_cast<int>(p.n_padded);
  params.k_padded = static_cast<int>(p.k_padded);
  params.lda = x.stride();
  params.ldc = y.stride();
  set_partition(plan, params);
  params.vector_store =
      reinterpret_cast<std::uintptr_t>(y.data) % 4 == 0 && y.stride() % 2 == 0 ? 1 : 0;
  params.trace = gemm_trace_for(plan.blocks);  // null unless a diagnostic trace is set
  params.cluster_blocks = plan.cluster_blocks;
  launch(kernel, stream, {static_cast<unsigned>(plan.blocks)},
         {static_cast<unsigned>(gemm_launch_threads(plan.key.tile))},
         static_cast<unsigned>(plan.smem_bytes), &params,
         static_cast<unsigned>(params.cluster_blocks), pdl_enabled && dev.compute_capability >= 90);
}

}  // namespace marlinrt
