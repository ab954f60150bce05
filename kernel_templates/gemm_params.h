// Launch parameters of the GEMM kernel, shared by the host (runtime/) and the
// NVRTC-compiled template: plain types only, identical layout on both sides.
#pragma once

namespace marlinrt::kern {

struct GemmParams {
  const void* a;           // activations [m, k], row stride lda elements, 16-byte aligned rows
  const void* b;           // repacked E2M1 weights, see repack.cuh
  const void* scales;      // repacked E4M3 group scales, see repack.cuh
  const void* bias;        // [n] in the activation dtype, or null
  void* c;                 // output [m, n], row stride ldc elements
  float* workspace;        // fp32 partial sums: 2 slots per block, rows*tile_n floats each
  int* locks;              // one arrival counter per output tile, zero between launches
  float global_scale;      // weight_scale_2 * 2^7 (the decode's power of two folded in)
  int m, n, k;             // logical sizes
  int n_padded, k_padded;  // multiples of 64: the repacked layout's extent
  long long lda, ldc;
  int m_tiles, n_tiles, k_tiles;
  // The striped partition of the m_tiles * n_tiles * k_tiles work units (< 2^31) over the
  // grid: block b starts at unit b * stripe_units + min(b, stripe_extra) (see Stripe).
  int stripe_units, stripe_extra;
  // > 0: a k split, the cut above repeated inside each tile over tile_sharers blocks (block b
  // owns part b % tile_sharers of tile b / tile_sharers; see tile_order.h).
  int tile_sharers;
  // 1: the stripes above. Else the grid size, and block b owns whole tiles b, b + tile_step,
  // ...: the tiles in flight at one time are neighbours in the band order below, so they
  // share rows of A and weight strips in L2 (large M; the stripes spread the blocks over the
  // whole output, and at M = 4096 every byte came from DRAM).
  int tile_step;
  // Tile t -> (n_tile, m_tile): bands of band_m m-tiles (the last may be shorter), column
  // after column inside a band. band_m = m_tiles is the plain n-major order.
  int band_m;
  int vector_store;  // 1 when c and ldc allow 32-bit paired stores
  // > 1 (sm_90 only): the grid is made of clusters of this many blocks, each cluster exactly
  // the sharers of one output tile (one k-range each, in rank order), which reduce through
  // distributed shared memory instead of the global workspace.
  int cluster_blocks;
  // Per-block event timestamps (kTraceSlots per block, see GemmTraceSlot), null unless
  // tracing; written only by kernels compiled with -DMARLINRT_GEMM_TRACE.
  unsigned long long* trace;
};

// The diagnostic per-block timeline: block b's values are trace[b * kTraceSlots + slot].
// Times are %globaltimer nanoseconds as thread 0 of the block sees them; a slot never
// written stays as the host left it (zero).
inline constexpr int kTraceSlots = 16;
enum GemmTraceSlot : int {
  kTraceEntry = 0,        // run() starts
  kTraceLoadsIssued = 1,  // the prologue's pipeline loads are issued
  kTraceFirstData = 2,    // the first stage has arrived (first wait + barrier of the loop)
  // The block's first two finish_segment calls, 3 slots each (segment s: slot + 3 * s).
  kTraceSegStart = 3,    // the call starts
  kTraceSegArrived = 4,  // after the barrier that makes `last` known; 0 for a whole tile
  kTraceSegDone = 5,     // the call has returned
  kTraceEnd = 9,         // after the final cp_async_wait<0>
  // Plain values, not times:
  kTraceLastMask = 10,  // bit s: the block was the last arriver of its segment s (s < 2)
  kTraceUnits = 11,     // work units of the block's stripe
  kTraceSegments = 12,  // finish_segment calls
};
inline constexpr int kTraceTimedSegments = 2;

}  // namespace marlinrt::kern
