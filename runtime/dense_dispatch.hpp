// Dense dispatch: which kernel (tile config, m-blocks) and grid a dense call uses.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "kernel_templates/gemm_params.h"
#include "marlinrt/kernel_key.hpp"

namespace marlinrt::detail {

// Every kernel key linear() may launch for a layer of logical shape (n, k) in activation
// dtype `act`, on `arch` with `sm_count` SMs, for any M in [1, max_m]. Used by prebuild so
// that exactly the kernels a model needs are compiled.
std::vector<KernelKey> dense_keys_for_shape(std::int64_t n, std::int64_t k, DType act, int arch,
                                            int sm_count, std::int64_t max_m);

// The helper kernels prepare_nvfp4_linear launches (repack of weights and scales).
std::vector<KernelKey> prepare_keys(int arch);

// SM count assumed for an arch when prebuilding without a GPU (e.g. 132 for sm_90 H100 SXM).
int default_sm_count(int arch);

}  // namespace marlinrt::detail

namespace marlinrt::detail {

// Shared memory a GEMM tile config needs: the host mirror of GemmConfig::smem_bytes
// in kernel_templates/gemm.cuh (the kernel traps if the launch gives it less).
int gemm_smem_bytes(const GemmTile& tile);

// Output columns one warp owns: the host mirror of GemmConfig::warp_cols.
int gemm_warp_cols(const GemmTile& tile);

// Whether the tile's kernel is warp-specialized (the 128-row wgmma kernel, and the 64-row one
// with GemmTile::specialized): a producer warpgroup of 128 threads after tile.threads
// consumers, no cluster reduction. The host mirror of GemmConfig::specialized.
bool gemm_warp_specialized(const GemmTile& tile);
// Whether the tile's columns need not divide the padded N: the last n-tile is cut short at
// the weight's end (GemmConfig::ragged_n; the 128-row kernel's 256-column tiles).
bool gemm_ragged_n(const GemmTile& tile);
// Threads a launch of the tile's kernel has (GemmConfig::launch_threads).
int gemm_launch_threads(const GemmTile& tile);

// Resident blocks per SM the kernel's register budget is made for: the host mirror of
// GemmConfig::min_blocks_per_sm (128 registers per thread for 1-2 m-blocks, else 255; the
// tile's resident_blocks where it has one).
int gemm_blocks_per_sm(const GemmTile& tile);

// Whether the kernel template accepts the tile: its warps must tile the columns and split the
// k16 steps evenly (the host mirror of GemmConfig's static_asserts).
bool gemm_tile_valid(const GemmTile& tile);

// One dense launch: the kernel and its striped grid.
struct DensePlan {
  KernelKey key;
  int blocks = 0;  // stripes, one block each
  int m_tiles = 0, n_tiles = 0, k_tiles = 0;
  int stripe_units = 0, stripe_extra = 0;  // block b starts at b * stripe_units + min(b, extra)
  // > 0: a k split, the stripe cut above made inside each tile over this many blocks
  // (GemmParams::tile_sharers); every block owns part of exactly one tile.
  int tile_sharers = 0;
  // > 1: no stripes; block b owns whole tiles b, b + tile_step, ... (GemmParams::tile_step).
  int tile_step = 1;
  int band_m = 0;  // m-tiles per band of the tile order (GemmParams::band_m)
  // > 1: launch clusters of this many blocks, each the sharers of one tile, which reduce
  // through distributed shared memory (sm_90; see GemmParams::cluster_blocks).
  int cluster_blocks = 1;
  int smem_bytes = 0;
  std::int64_t workspace_floats = 0;  // fp32 partial-sum slots
  std::int64_t lock_count = 0;        // one arrival counter per output tile
};

// Copies the plan's partition of the work (tile counts, stripes, tile order) into the kernel
// parameters: the fields GemmKernel and tile_order.h read to find a block's units.
void set_partition(const DensePlan& plan, kern::GemmParams& params);

// A tuning override of the tile choice, from MARLINRT_DENSE_TILE = "KxN[:B][/T][@R]"
// (tile_k x tile_n, optionally B resident blocks per SM, 1 to 4, T threads per block, 128 or
// 256, and R rows per wgmma m-tile for M > 64 on sm_90, 64 or 128). B = 2 on the 64-row wgmma
// kernel's 128x128 tiles also selects its two-block register budget (GemmTile::resident_blocks).
struct DenseTileOverride {
  int tile_k = 0, tile_n = 0;
  int blocks_per_sm = 0;  // 0: the default for the kernel
  int threads = 0;        // 0: 256, or 128 for 64x64 tiles
  int rows = 0;           // 0: 128 with a forced wgmma and 128-column tiles, else 64
};
// Parses the variable's value; throws invalid_argument naming the variable and the accepted
// form. An empty value means no override.
std::optional<DenseTileOverride> parse_dense_tile_override(std::string_view value);

// Keeps plan.cluster_blocks only when all of the plan's clusters can be resident at once,
// given resident[c] = how many clusters of c blocks the kernel can keep resident (index
// 2..8); else 1, the workspace reduction over the same stripes. A second wave of clusters
// cost more than the reduction saves (4096x4096 M = 1: 11.3 -> 14.3 us on H200), and so did
// re-cutting the stripes into fewer, longer ones that fit as clusters of 4 (11.0 -> 12.8 us).
void fit_clusters(DensePlan& plan, std::span<const int> resident);

// Which tensor-core instruction the 4-m-block kernels use on sm_90 (MARLINRT_DENSE_MMA):
// "auto" (the built-in choice), "sync" (mma.sync only) or "wgmma" (the warpgroup MMA only).
enum class DenseMma { automatic, sync, wgmma };
// Throws invalid_argument naming the variable for anything but auto, sync, wgmma or empty.
DenseMma parse_dense_mma(std::string_view value);

// How a plan orders its tiles (MARLINRT_DENSE_ORDER): "auto" (the built-in choice), "stripes"
// (always the striped partition), "bands" (whole tiles in band order wherever there are at
// least as many tiles as block slots) or "bands:B" (the same with B m-tiles per band).
struct DenseOrder {
  enum Mode { automatic, stripes, bands } mode = automatic;
  int band_m = 0;  // 0: the built-in band height
};
// Throws invalid_argument naming the variable and the accepted forms.
DenseOrder parse_dense_order(std::string_view value);

// The plan for y[m, n] = x[m, k] W^T with the padded extents of the prepared weight.
// MARLINRT_DENSE_TILE, MARLINRT_DENSE_MMA and MARLINRT_DENSE_ORDER (read once per process),
// when set, replace the choice: a shape the tile does not divide, or shared memory it does not fit,
// is an error naming the variable.
DensePlan plan_dense(std::int64_t m, std::int64_t n_padded, std::int64_t k_padded, DType act,
                     int arch, int sm_count, int smem_limit);
// The same with explicit overrides (nullopt, automatic: the built-in choice).
DensePlan plan_dense(std::int64_t m, std::int64_t n_padded, std::int64_t k_padded, DType act,
                     int arch, int sm_count, int smem_limit,
                     const std::optional<DenseTileOverride>& tile_override,
                     DenseMma mma = DenseMma::automatic, DenseOrder order = {});

}  // namespace marlinrt::detail
