// The Marlin-style W4A16 GEMM: C[m, n] = A[m, k] * dequant(B)[k, n] * global_scale (+ bias).
//
// Pieces, top to bottom:
//   GemmConfig      compile-time shape of a block (from the KernelKey)
//   (tile_order.h)  which work units (tile, k-tile) a block owns and the Cursor that walks
//                   them: stripes, or whole tiles in band order for large M
//   StageLoader     cp.async of one work unit's A rows, weights and scales into a stage;
//                   per-thread sources are computed once per tile, then only advanced
//   compute_stage   ldmatrix A, decode B in registers, mma.sync into fp32 accumulators
//                   (compute_stage_wgmma: the decoded weights as wgmma's register operand)
//   reduce_warps_k  fixed-order sum over warps that split k inside a block
//   finish_segment  write the tile, or publish a partial and let the last arriver sum
//                   all partials of the tile in block order (deterministic)
//   store_pair      the epilogue: global scale in fp32, bias, one rounding to 16 bit
//   trace           diagnostic per-block timeline, only with -DMARLINRT_GEMM_TRACE
//
// No 64-bit division anywhere: a single integer division chain in the reduction once cost
// more than the whole GEMM on small layers.
#pragma once

#include "fp4_decode.cuh"
#include "gemm_params.h"
#include "ptx.cuh"
#include "tile_order.h"

namespace marlinrt::kern {

template <int kAct, int kTileK, int kTileN, int kMBlocks, int kStages, int kThreads, bool kMoe,
          int kActFn, bool kGated, bool kTopkW, bool kWgmma = false, int kResidentBlocks = 0,
          bool kSpecialized = false>
struct GemmConfig {
  static constexpr bool bf16 = kAct == 1;
  // sm_90a warpgroup MMA with the layer's columns as its M side. Two warpgroups of four warps.
  // With 256-column tiles warp w owns half w % 2 of weight strip w / 2 (32 columns), as with
  // mma.sync at 2-4 m-blocks, and the two words a lane holds per k16 step are the A fragments
  // of two m64 x rows instructions (word j: n8 tiles 2j, 2j+1 = rows g and g+8 of the warp's
  // 16-row slice). With 128-column tiles warp w owns word w % 2 of that half (16 columns),
  // the A fragment of one instruction. The block's rows of A (64, or 128 with 8 m-blocks) are
  // the B operand, read from shared memory: one decode feeds them all, and the tensor cores
  // run asynchronously to the next decode.
  static constexpr bool wgmma = kWgmma;
  // Warp specialization (the 128-row wgmma kernel, and the 64-row one on request): a producer
  // warpgroup after the two consumer warpgroups issues every copy, and per-stage mbarriers replace
  // the block-wide barrier, so each consumer drains and refills its wgmma pipeline on its own while
  // the other keeps the tensor cores busy. Registers are allocated per SM quarter (one warp of each
  // warpgroup), so a single producer warp would cost as much as a warpgroup: instead the
  // producer drops to producer_registers and the consumers rise to consumer_registers
  // (40 + 2 * 232 <= 512 per quarter and thread).
  static constexpr bool specialized = kWgmma && (kMBlocks == 8 || kSpecialized);
  // The 128-row kernel's 256-column tiles need not divide n_padded (a multiple of 128):
  // its loader zero-fills the strips past the weight's end in the last n-tile. Not for 128
  // columns, which always divide it and would pay the check (host mirror: gemm_ragged_n()).
  static constexpr bool ragged_n = specialized && kMBlocks == 8 && kTileN == 256;
  static constexpr int producers = specialized ? 128 : 0;
  static constexpr int launch_threads = kThreads + producers;
  static constexpr int producer_registers = 40;
  static constexpr int consumer_registers = 232;
  static constexpr int tile_k = kTileK;
  static constexpr int tile_n = kTileN;
  static constexpr int m_blocks = kMBlocks;
  static constexpr int rows = 16 * kMBlocks;
  static constexpr int stages = kStages;
  static constexpr int threads = kThreads;
  static constexpr int warps = kThreads / 32;
  // Small-M kernels are latency bound: more resident warps hide more of it, so their
  // registers are capped at 128 per thread (512 threads' worth of blocks per SM), the others'
  // at 255 (host mirror: gemm_blocks_per_sm() in runtime/dense_dispatch.cpp).
  // kResidentBlocks (KernelKey b2, the 64-row wgmma kernel on 128x128 tiles) budgets them
  // for that many blocks instead, for calls whose tiles leave the SMs latency bound.
  static constexpr int min_blocks_per_sm =
      kResidentBlocks ? kResidentBlocks : (kMBlocks <= 2 ? 512 : 256) / kThreads;
  // A warp owns 64 columns (one 16-byte weight load per k16 step) when few rows share each
  // decoded weight, 32 with 2-4 m-blocks so that its accumulators stay in registers: 64
  // columns at 4 m-blocks spill and measured 291 -> 248 TFLOP/s at M = 4096 (session 7)
  // (host mirror: gemm_warp_cols() in runtime/dense_dispatch.cpp).
  static constexpr int warp_cols = kWgmma ? kTileN / 8 : kMBlocks == 1 ? 64 : 32;
  static constexpr int warp_tiles = warp_cols / 8;  // n8 tiles per warp
  static constexpr int warps_n = kTileN / warp_cols;
  static constexpr int warps_k = warps / warps_n;
  static constexpr int k16_per_tile = kTileK / 16;
  static constexpr int k16_per_warp = k16_per_tile / warps_k;
  // Shared memory (the host computes the same numbers in gemm_smem_bytes()).
  static constexpr int a_stage_bytes = rows * kTileK * 2;
  static constexpr int b_stage_bytes = kTileK * kTileN / 2;
  static constexpr int s_stage_bytes = kTileK * kTileN / 16;
  static constexpr int stage_bytes = a_stage_bytes + b_stage_bytes + s_stage_bytes;
  // After the stages: the k-split warps' partial sums, reused by the cross-block reduction
  // for one float4 per thread.
  static constexpr int warp_sum_bytes = (warps_k - 1) * rows * kTileN * 4;
  static constexpr int reduce_bytes =
      warp_sum_bytes > kThreads * 16 ? warp_sum_bytes : kThreads * 16;
  // wgmma kernels stage their tile through shared memory for a cluster reduction: make room.
  static constexpr int pipeline_bytes = kStages * stage_bytes + reduce_bytes;
  static constexpr int partial_bytes = rows * kTileN * 4;
  static constexpr int smem_bytes =
      kWgmma && partial_bytes > pipeline_bytes ? partial_bytes : pipeline_bytes;
  // 16-byte chunks each stage copies (StageLoader shares them out).
  static constexpr int a_chunks = a_stage_bytes / 16;
  static constexpr int b_chunks = b_stage_bytes / 16;
  static constexpr int s_chunks = s_stage_bytes / 16;

  static_assert(kThreads == 128 || kThreads == 256, "threads");
  static_assert(kTileK == 64 || kTileK == 128 || kTileK == 256, "tile_k");
  static_assert(kTileN == 64 || kTileN == 128 || kTileN == 256, "tile_n");
  static_assert(warps_n >= 1 && warps % warps_n == 0 && warps_k >= 1,
                "warps must tile the n dimension");
  static_assert(k16_per_tile % warps_k == 0, "k16 steps must split evenly over warps");
  static_assert(!kMoe, "the MoE GEMM is not implemented yet");
  // Host mirror: wgmma_tile_shape() in runtime/wgmma_tile.hpp.
  static_assert(!kWgmma || (kThreads == 256 && (kTileN == 128 || kTileN == 256) &&
                            (kMBlocks == 4 || kMBlocks == 8)),
                "wgmma: two warpgroups, 64 or 128 rows x 128 or 256 columns");
  // Host mirror: wgmma_two_block_tile() in runtime/wgmma_tile.hpp.
  static_assert(kResidentBlocks == 0 || (kResidentBlocks == 2 && kWgmma && kMBlocks == 4 &&
                                         kTileK == 128 && kTileN == 128),
                "a two-block register budget exists for the 64-row wgmma kernel on 128x128 tiles");
  // Host mirror: KernelKey::validate() ("ws").
  static_assert(!kSpecialized || (kWgmma && kMBlocks == 4 && kResidentBlocks == 0),
                "warp specialization on request is for the 64-row wgmma kernel");
  // The accumulators: [m-block][n8 tile][4] for mma.sync, [instruction][n8 of rows][4] for
  // wgmma (one m64 x rows D fragment per instruction).
  static constexpr int acc_outer = kWgmma ? warp_cols / 16 : kMBlocks;
  // wgmma: k16 steps decoded and issued per commit group.
  static constexpr int wgmma_steps = 4;
  static constexpr int acc_inner = kWgmma ? rows / 8 : warp_tiles;

  // A's shared layout; copy chunk c is 16 bytes of row c / a_chunks_per_row, so neighbouring
  // threads read one row's contiguous bytes and a thread's chunks share a column.
  // mma.sync: row-major rows, 16-byte chunks XOR-swizzled by row for ldmatrix. wgmma: the
  // 128-byte-swizzled K-major operand, one 64-wide k slab after the other ([slab][row][128 B],
  // chunk ^ row % 8 inside a 1024-byte block of 8 rows). The no-swizzle core-matrix layout
  // made each warp's copies touch twice the L2 lines: L2 throughput 80 % of peak at 128 rows.
  static constexpr int a_chunks_per_row = kTileK / 8;
  static constexpr int a_slab_bytes = rows * 128;  // one 64-wide k slab of all rows (wgmma)
  __device__ static int a_chunk_row(int c) { return c / a_chunks_per_row; }
  __device__ static int a_chunk_col(int c) { return c % a_chunks_per_row; }
  __device__ static int a_smem_offset(int r, int ch) {
    return kWgmma ? (ch / 8) * a_slab_bytes + r * 128 + (((ch % 8) ^ (r & 7)) * 16)
                  : r * kTileK * 2 + ((ch ^ (r & 7)) * 16);
  }
  // The swizzle is applied to address bits, so every 8-row block must be 1024-byte aligned.
  static_assert(!kWgmma || (stage_bytes % 1024 == 0 && a_slab_bytes % 1024 == 0),
                "wgmma stages keep the 128-byte swizzle's 1024-byte alignment");
};

struct __align__(16) U4 {
  u32 x, y, z, w;
};
struct __align__(8) U2 {
  u32 x, y;
};
struct __align__(8) F2 {
  float x, y;
};
struct __align__(16) F4 {
  float x, y, z, w;
};

// Copies work units into pipeline stages. kLoaders threads from kFirstLoader on share the
// copies: the whole block, or the producer warpgroup of a warp-specialized kernel. Loader
// thread tid = threadIdx.x - kFirstLoader owns chunks tid + i * kLoaders of each stage. Only
// chunk 0's global source is kept: the others sit at offsets that are compile-time multiples
// of a row or strip stride read from the kernel parameters, so the loader holds five
// registers instead of one pointer per chunk (the 64-column, 4-m-block warps need those
// registers for their accumulators).
template <class Cfg, int kLoaders = Cfg::threads, int kFirstLoader = 0>
struct StageLoader {
  const GemmParams& p;
  Cursor at;
  const char* a_src;  // chunk 0's source
  int a_col;          // first column of every chunk of this thread (rows differ, columns not)
  int a_row;          // chunk 0's row
  u32 a_rows_ok;      // bit i: chunk i's row is < m (when a loader has at most 32 A chunks)
  const char* b_src;
  const char* s_src;
  int b_strips;  // strips of this tile inside the weight (fewer only with Cfg::ragged_n)

  static constexpr int a_chunks_per_row = Cfg::a_chunks_per_row;
  static constexpr int b_strip_chunks = Cfg::k16_per_tile * 32;  // 512 B per k16 unit
  static constexpr int s_strip_chunks = Cfg::k16_per_tile * 4;   // 64 B per k16 unit
  static constexpr int a_iters = (Cfg::a_chunks + kLoaders - 1) / kLoaders;
  static constexpr int b_iters = (Cfg::b_chunks + kLoaders - 1) / kLoaders;
  static constexpr int s_iters = (Cfg::s_chunks + kLoaders - 1) / kLoaders;
  static constexpr bool row_mask = a_iters <= 32;
  static_assert(kLoaders % a_chunks_per_row == 0, "a thread's A chunks share a column");

  __device__ static int tid() { return static_cast<int>(threadIdx.x) - kFirstLoader; }
  __device__ static bool owns(int i, int chunks) {
    return chunks % kLoaders == 0 || tid() + i * kLoaders < chunks;
  }

  // Offset of chunk i from chunk 0 when a stage is made of strips of kStripChunks 16-byte
  // chunks that lie `stride` bytes apart in global memory (rows of A, weight strips).
  template <int kStripChunks>
  __device__ static long long chunk_offset(int i, long long stride) {
    constexpr int t = kLoaders;
    if constexpr (t % kStripChunks == 0) {
      return i * (t / kStripChunks) * stride;
    } else {
      static_assert(kStripChunks % t == 0, "strips and threads must nest");
      constexpr int q = kStripChunks / t;
      return (i / q) * stride + (i % q) * t * 16;
    }
  }
  __device__ long long a_row_bytes() const { return p.lda * 2; }
  __device__ long long b_strip_bytes() const { return p.k_padded * 32LL; }
  __device__ long long s_strip_bytes() const { return p.k_padded * 4LL; }
  __device__ bool a_row_ok(int i) const {
    if constexpr (row_mask) {
      return a_rows_ok >> i & 1u;
    } else {
      return a_row + i * (kLoaders / a_chunks_per_row) < p.m;
    }
  }

  __device__ StageLoader(const GemmParams& params, Cursor start) : p(params), at(start) {
    start_tile();
  }

  __device__ void start_tile() {
    const int c = tid();
    a_row = at.m_tile * Cfg::rows + Cfg::a_chunk_row(c);
    a_col = at.kt * Cfg::tile_k + Cfg::a_chunk_col(c) * 8;
    a_src = static_cast<const char*>(p.a) + (static_cast<long long>(a_row) * p.lda + a_col) * 2;
    a_rows_ok = 0;
    if constexpr (row_mask) {
#pragma unroll
      for (int i = 0; i < a_iters; ++i)
        if (a_row + i * (kLoaders / a_chunks_per_row) < p.m) a_rows_ok |= 1u << i;
    }
    const long long strip = static_cast<long long>(at.n_tile) * (Cfg::tile_n / 64);
    const long long kb = static_cast<long long>(at.kt) * Cfg::k16_per_tile;
    const long long k_units = p.k_padded / 16;
    b_strips = Cfg::tile_n / 64;
    if constexpr (Cfg::ragged_n) {
      const int left = p.n_padded / 64 - static_cast<int>(strip);
      if (left < b_strips) b_strips = left;
    }
    b_src = static_cast<const char*>(p.b) + ((strip + c / b_strip_chunks) * k_units + kb) * 512 +
            (c % b_strip_chunks) * 16;
    s_src = static_cast<const char*>(p.scales) +
            ((strip + c / s_strip_chunks) * k_units + kb) * 64 + (c % s_strip_chunks) * 16;
  }

  __device__ void advance() {
    if (at.advance(p)) {
      start_tile();
      return;
    }
    a_src += Cfg::tile_k * 2;
    a_col += Cfg::tile_k;
    b_src += Cfg::k16_per_tile * 512;
    s_src += Cfg::k16_per_tile * 64;
  }

  // Issue the copies of the current unit into the stage at shared address `stage`.
  __device__ void load(u32 stage) const {
    load_a(stage);
    load_weights(stage);
  }

  // A: rows x tile_k halves (GemmConfig::a_smem_offset); rows past m and columns past k are
  // zero-filled without reading.
  __device__ void load_a(u32 stage) const {
    const bool col_ok = a_col < p.k;
    // A producer warpgroup's 32-64 A chunks, fully unrolled, spilled its 40 registers.
#pragma unroll(kFirstLoader > 0 ? 2 : a_iters)
    for (int i = 0; i < a_iters; ++i) {
      if (!owns(i, Cfg::a_chunks)) continue;
      const int c = tid() + i * kLoaders;
      const bool ok = col_ok && a_row_ok(i);
      cp_async16(stage + Cfg::a_smem_offset(Cfg::a_chunk_row(c), Cfg::a_chunk_col(c)),
                 ok ? a_src + chunk_offset<a_chunks_per_row>(i, a_row_bytes()) : p.a, ok ? 16 : 0);
    }
  }

  // The prepared weights and scales: written once by prepare, which synchronizes, so they may
  // be read before griddep_wait().
  __device__ void load_weights(u32 stage) const {
    // B: tile_n / 64 strips of k16_per_tile units, each contiguous in global memory. (No L2
    // evict-first hint: a member-held createpolicy value faulted as an illegal instruction
    // in one specialization, and the weights stream through L2 once either way.)
    // Strips past the weight's end (Cfg::ragged_n) are zero-filled: code 0 decodes to 0.
#pragma unroll
    for (int i = 0; i < b_iters; ++i) {
      if (!owns(i, Cfg::b_chunks)) continue;
      const int c = tid() + i * kLoaders;
      const bool ok = !Cfg::ragged_n || c / b_strip_chunks < b_strips;
      cp_async16(stage + Cfg::a_stage_bytes + c * 16,
                 ok ? b_src + chunk_offset<b_strip_chunks>(i, b_strip_bytes()) : p.b, ok ? 16 : 0);
    }
#pragma unroll
    for (int i = 0; i < s_iters; ++i) {
      if (!owns(i, Cfg::s_chunks)) continue;
      const int c = tid() + i * kLoaders;
      const bool ok = !Cfg::ragged_n || c / s_strip_chunks < b_strips;
      cp_async16(stage + Cfg::a_stage_bytes + Cfg::b_stage_bytes + c * 16,
                 ok ? s_src + chunk_offset<s_strip_chunks>(i, s_strip_bytes()) : p.scales,
                 ok ? 16 : 0);
    }
  }
};

template <class Cfg>
struct GemmKernel {
  static constexpr bool bf16 = Cfg::bf16;
  typedef float Acc[Cfg::acc_outer][Cfg::acc_inner][4];

  const GemmParams& p;
  char* smem;
  u32 smem_addr;
  int warp, lane, wn, wk;

  __device__ GemmKernel(const GemmParams& params, char* shared)
      : p(params),
        smem(shared),
        smem_addr(smem_u32(shared)),
        warp(threadIdx.x / 32),
        lane(threadIdx.x % 32),
        wn(warp % Cfg::warps_n),
        wk(warp / Cfg::warps_n) {}

  // ---- trace (diagnostics) ------------------------------------------------------------
  // Without MARLINRT_GEMM_TRACE these are empty: this is the hot kernel, and the normal
  // build must not carry a single extra instruction. With it, thread 0 writes its block's
  // slots (see GemmTraceSlot); a null p.trace writes nothing, so a traced build still runs
  // untraced launches. No barrier is added or moved.
  __device__ void trace_value(int slot, u64 value) const {
#ifdef MARLINRT_GEMM_TRACE
    if (threadIdx.x == 0 && p.trace) p.trace[blockIdx.x * kTraceSlots + slot] = value;
#else
    (void)slot, (void)value;
#endif
  }
  __device__ void trace(int event) const {
#ifdef MARLINRT_GEMM_TRACE
    trace_value(event, globaltimer_ns());
#else
    (void)event;
#endif
  }
  // Event kTraceSeg* of the block's segment-th finish_segment call; only the first two
  // have slots.
  __device__ void trace_segment(int segment, int event) const {
    if (segment < kTraceTimedSegments) trace(event + 3 * segment);
  }
  // Once `last` is known: the arrival time and the last-arriver bit.
  __device__ void trace_arrival(int segment, bool last) const {
#ifdef MARLINRT_GEMM_TRACE
    if (segment >= kTraceTimedSegments) return;
    trace_segment(segment, kTraceSegArrived);
    if (threadIdx.x == 0 && p.trace && last)
      p.trace[blockIdx.x * kTraceSlots + kTraceLastMask] |= 1ull << segment;
#else
    (void)segment, (void)last;
#endif
  }

  // All threads that compute (the whole block, or the consumers of a specialized one).
  __device__ static void sync_consumers() {
    if constexpr (Cfg::specialized) {
      named_barrier_sync(1, Cfg::threads);
    } else {
      __syncthreads();
    }
  }

  // ---- math ----------------------------------------------------------------------------
  // `fresh`: acc holds no partial sum yet (the segment's first unit). mma.sync kernels zero
  // acc instead; wgmma's first step overwrites it.
  __device__ void compute_stage(int slot, Acc& acc, bool fresh) const {
    if constexpr (Cfg::wgmma) {
      compute_stage_wgmma(slot, acc, fresh);
    } else {
      compute_stage_sync(slot, acc);
    }
  }

  __device__ void compute_stage_sync(int slot, Acc& acc) const {
    const char* s = smem + slot * Cfg::stage_bytes;
    const u32 a_base = smem_addr + slot * Cfg::stage_bytes;
    const char* sb = s + Cfg::a_stage_bytes;
    const char* ss = sb + Cfg::b_stage_bytes;
    const int g = lane / 4;
    // ldmatrix.x4: lane l addresses row (l & 7) + 8 * (matrix & 1), 16-byte column chunk
    // 2 * kk + (matrix >> 1) of each 16-row block; the row swizzle is row & 7 = l & 7.
    const int mat = lane / 8;
    const u32 a_row = a_base + ((mat & 1) * 8 + (lane & 7)) * Cfg::tile_k * 2;
    // Warp wn owns columns [wn * warp_cols, +warp_cols): strip wn * warp_cols / 64, and in
    // it half (wn & 1) when warps own 32 columns.
    const int strip = wn * Cfg::warp_cols / 64;
    const int half = Cfg::warp_cols == 32 ? (wn & 1) : 0;
#pragma unroll
    for (int i = 0; i < Cfg::k16_per_warp; ++i) {
      const int kk = wk * Cfg::k16_per_warp + i;
      const int unit = strip * Cfg::k16_per_tile + kk;
      // Weight word j holds n8 tiles 2j, 2j+1; scale word q holds tiles 4q..4q+3.
      u32 words[Cfg::warp_tiles / 2];
      u32 scales[Cfg::warp_tiles / 4][2];
      if constexpr (Cfg::warp_cols == 64) {
        const U4 bw = *reinterpret_cast<const U4*>(sb + unit * 512 + lane * 16);
        const U2 sw = *reinterpret_cast<const U2*>(ss + unit * 64 + g * 8);
        words[0] = bw.x, words[1] = bw.y, words[2] = bw.z, words[3] = bw.w;
        decode_scale_pairs<bf16>(sw.x, scales[0]);
        decode_scale_pairs<bf16>(sw.y, scales[1]);
      } else {
        const U2 bw = *reinterpret_cast<const U2*>(sb + unit * 512 + lane * 16 + half * 8);
        const u32 sw = *reinterpret_cast<const u32*>(ss + unit * 64 + g * 8 + half * 4);
        words[0] = bw.x, words[1] = bw.y;
        decode_scale_pairs<bf16>(sw, scales[0]);
      }
      u32 a[Cfg::m_blocks][4];
#pragma unroll
      for (int mb = 0; mb < Cfg::m_blocks; ++mb) {
        const int ch = (kk * 2 + (mat >> 1)) ^ (lane & 7);
        ldmatrix_x4(a[mb], a_row + mb * 16 * Cfg::tile_k * 2 + ch * 16);
      }
#pragma unroll
      for (int j = 0; j < Cfg::warp_tiles / 2; ++j) {
        u32 b[4];
        if (j % 2 == 0) {
          decode_scaled_tiles<bf16, 0>(words[j], scales[j / 2], b);
        } else {
          decode_scaled_tiles<bf16, 1>(words[j], scales[j / 2], b);
        }
#pragma unroll
        for (int mb = 0; mb < Cfg::m_blocks; ++mb) {
          mma_16816<bf16>(acc[mb][2 * j], a[mb], b[0], b[1]);
          mma_16816<bf16>(acc[mb][2 * j + 1], a[mb], b[2], b[3]);
        }
      }
    }
  }

  // wgmma: acc[j] is instruction j's D fragment. A k16 step's A fragments are decoded while
  // the previous step's instructions run; waiting for all but the newest group then frees
  // the previous register set. A 16-column warp takes word w % 2 of its half strip, whose
  // scales are the high halves of the pairs: one PRMT swaps them in. (Not a branch to two
  // copies of the loop: wgmma is .aligned, every warp of a warpgroup must issue the same
  // instruction, and fp16 results came out wrong when the warps of a pair diverged.)
  __device__ void compute_stage_wgmma(int slot, Acc& acc, bool fresh) const {
#if __CUDA_ARCH__ >= 900
    constexpr int kWords = Cfg::warp_cols / 16;  // one instruction each
    const int first_word = kWords == 1 ? (wn & 1) : 0;
    const u32 scale_halves = first_word ? 0x1032u : 0x3210u;  // PRMT selector
    const char* s = smem + slot * Cfg::stage_bytes;
    const char* sb = s + Cfg::a_stage_bytes;
    const char* ss = sb + Cfg::b_stage_bytes;
    const int g = lane / 4;
    const int strip = wn * Cfg::warp_cols / 64, half = (wn * Cfg::warp_cols / 32) & 1;
    // A (the instructions' B), 128-byte swizzled: step kk starts 32 bytes into its slab's
    // rows (the hardware swizzles the address bits, so the start may sit inside a row).
    const u64 desc = wgmma_desc_sw128(smem_addr + slot * Cfg::stage_bytes);
    const auto step_offset = [](int kk) {
      return static_cast<u64>(((kk / 4) * Cfg::a_slab_bytes + (kk % 4) * 32) >> 4);
    };
    // The weight and scale words of step kk, loaded one group early: the wait below is a
    // compiler barrier, and a load issued after it would put its latency between two groups.
    const auto words_of = [&](int kk, u32(&w)[kWords], u32& sc) {
      const int unit = strip * Cfg::k16_per_tile + kk;
      const char* src = sb + unit * 512 + lane * 16 + half * 8 + first_word * 4;
      if constexpr (kWords == 2) {
        const U2 pair = *reinterpret_cast<const U2*>(src);
        w[0] = pair.x, w[1] = pair.y;
      } else {
        w[0] = *reinterpret_cast<const u32*>(src);
      }
      sc = *reinterpret_cast<const u32*>(ss + unit * 64 + g * 8 + half * 4);
    };
    // kSteps k16 steps per commit group: while a group runs, the next kSteps steps decode
    // (independent chains) and the tensor pipe has a whole group queued. Measured within
    // noise of one step per group (H200, session 10), so the choice is not critical.
    constexpr int kSteps = Cfg::wgmma_steps;
    static_assert(Cfg::k16_per_tile % kSteps == 0, "commit groups tile the stage");
    u32 next_w[kSteps][kWords];
    u32 next_s[kSteps];
#pragma unroll
    for (int i = 0; i < kSteps; ++i) words_of(i, next_w[i], next_s[i]);
#pragma unroll
    for (int k0 = 0; k0 < Cfg::k16_per_tile; k0 += kSteps) {
      u32 words[kSteps][kWords], sw[kSteps];
#pragma unroll
      for (int i = 0; i < kSteps; ++i) {
        sw[i] = next_s[i];
#pragma unroll
        for (int j = 0; j < kWords; ++j) words[i][j] = next_w[i][j];
      }
      if (k0 + kSteps < Cfg::k16_per_tile)
#pragma unroll
        for (int i = 0; i < kSteps; ++i) words_of(k0 + kSteps + i, next_w[i], next_s[i]);
      u32 a[kSteps][kWords][4];
#pragma unroll
      for (int i = 0; i < kSteps; ++i) {
        u32 scales[2];
        decode_scale_pairs<bf16>(sw[i], scales);
        if constexpr (kWords == 1) {
          scales[0] = prmt(scales[0], 0, scale_halves);
          scales[1] = prmt(scales[1], 0, scale_halves);
        }
#pragma unroll
        for (int j = 0; j < kWords; ++j) {
          u32 b[4];
          if (j == 0) {
            decode_scaled_tiles<bf16, 0>(words[i][j], scales, b);
          } else {
            decode_scaled_tiles<bf16, 1>(words[i][j], scales, b);
          }
          // B fragments (n0: k lo, k hi; n1: k lo, k hi) -> A fragment (rows g, g+8; k lo, hi).
          a[i][j][0] = b[0], a[i][j][1] = b[2], a[i][j][2] = b[1], a[i][j][3] = b[3];
        }
      }
      wgmma_fence();
#pragma unroll
      for (int i = 0; i < kSteps; ++i)
#pragma unroll
        for (int j = 0; j < kWords; ++j)
          wgmma_m64nNk16<bf16, Cfg::rows>(acc[j], a[i][j], desc + step_offset(k0 + i),
                                          k0 + i == 0 && fresh ? 0u : 1u);
      wgmma_commit();
      wgmma_wait<1>();  // the previous group is done: its A registers are free
    }
    // All groups are done before the stage's slot is refilled and before anything reads the
    // accumulators. Keeping the last group running into the next stage measured slower
    // (docs/perf-notes.md, sessions 9 and 11).
    wgmma_wait<0>();
#else
    (void)slot, (void)acc, (void)fresh;
    asm volatile("trap;");  // the host asks for wgmma kernels on sm_90 only
#endif
  }

  // Fragment element (mb, j, e) of this lane sits at row mb*16 + g (+8 for e >= 2) and
  // column wn*warp_cols + j*8 + 2t (+1 for odd e) of the block's tile.
  __device__ int frag_row(int mb, int e) const { return mb * 16 + lane / 4 + (e >= 2 ? 8 : 0); }
  __device__ int frag_col(int j) const { return wn * Cfg::warp_cols + j * 8 + (lane % 4) * 2; }

  // Sum the accumulators of the warps that split k into wk == 0, in a fixed order (wk = 0,
  // 1, 2, ...): the others park theirs in one shared slot each, then one barrier. (A chain of
  // one barrier per warp made barrier waits the top stall of small layers.)
  __device__ void reduce_warps_k(Acc& acc) const {
    if constexpr (Cfg::warps_k > 1) {
      constexpr int slot_floats = Cfg::rows * Cfg::tile_n;
      float* red = reinterpret_cast<float*>(smem + Cfg::stages * Cfg::stage_bytes);
      auto cell = [&](int slot, int mb, int j, int h) {
        return reinterpret_cast<F2*>(red + slot * slot_floats + frag_row(mb, 2 * h) * Cfg::tile_n +
                                     frag_col(j));
      };
      if (wk > 0) {
#pragma unroll
        for (int mb = 0; mb < Cfg::m_blocks; ++mb)
#pragma unroll
          for (int j = 0; j < Cfg::warp_tiles; ++j)
#pragma unroll
            for (int h = 0; h < 2; ++h)
              *cell(wk - 1, mb, j, h) = F2{acc[mb][j][2 * h], acc[mb][j][2 * h + 1]};
      }
      sync_consumers();
      if (wk == 0) {
        for (int slot = 0; slot < Cfg::warps_k - 1; ++slot)
#pragma unroll
          for (int mb = 0; mb < Cfg::m_blocks; ++mb)
#pragma unroll
            for (int j = 0; j < Cfg::warp_tiles; ++j)
#pragma unroll
              for (int h = 0; h < 2; ++h) {
                const F2 v = *cell(slot, mb, j, h);
                acc[mb][j][2 * h] += v.x;
                acc[mb][j][2 * h + 1] += v.y;
              }
      }
      // The slots are written again only after the next stage's barrier.
    }
  }

  // ---- epilogue ------------------------------------------------------------------------
  // f(row, col, column slot, value) for every wgmma accumulator of this lane: element
  // (j, q, e) sits at row 8q + 2t (+1 for odd e) and column wn*warp_cols + 16j + g (+8 for
  // e >= 2) of the tile, the lane's column slot 2j (+1 for e >= 2).
  static constexpr int wgmma_column_slots = 2 * Cfg::acc_outer;
  __device__ int wgmma_column(int slot) const {
    return wn * Cfg::warp_cols + 16 * (slot / 2) + lane / 4 + (slot % 2) * 8;
  }
  template <class F>
  __device__ void for_each_wgmma_element(const Acc& acc, F&& f) const {
#pragma unroll
    for (int j = 0; j < Cfg::acc_outer; ++j)
#pragma unroll
      for (int q = 0; q < Cfg::acc_inner; ++q)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int slot = 2 * j + (e >= 2 ? 1 : 0);
          f(8 * q + (lane % 4) * 2 + (e & 1), wgmma_column(slot), slot, acc[j][q][e]);
        }
  }

  __device__ void store_tile(const Cursor& at, const Acc& acc) const {
    if constexpr (Cfg::wgmma) {
      // The bias of the lane's few columns, read once. Read per element, each load came again
      // after every store (which might alias it), and those 128 loads and branches took
      // ptxas 3.4 s of a 128x256 tile's 6.4 s compile. Without a bias, -0 leaves every sum as it
      // is (-0 included).
      typedef unsigned short h16;
      float bias[wgmma_column_slots];
#pragma unroll
      for (int i = 0; i < wgmma_column_slots; ++i) {
        const int col = at.n_tile * Cfg::tile_n + wgmma_column(i);
        bias[i] = p.bias && col < p.n ? to_float<bf16>(static_cast<const h16*>(p.bias)[col]) : -0.f;
      }
      for_each_wgmma_element(
          acc, [&](int r, int c, int slot, float v) { store_one(at, r, c, v, bias[slot]); });
    } else {
#pragma unroll
      for (int mb = 0; mb < Cfg::m_blocks; ++mb)
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int j = 0; j < Cfg::warp_tiles; ++j)
            store_pair(at, frag_row(mb, 2 * h), frag_col(j), acc[mb][j][2 * h],
                       acc[mb][j][2 * h + 1]);
    }
  }

  // Output (row, col), (row, col + 1) of the tile at `at`: global scale in fp32, bias,
  // one rounding. `col` is even; the pair may straddle n.
  __device__ void store_pair(const Cursor& at, int r, int c, float x, float y) const {
    typedef unsigned short h16;
    const int row = at.m_tile * Cfg::rows + r;
    const int col = at.n_tile * Cfg::tile_n + c;
    if (row >= p.m || col >= p.n) return;
    const bool pair = col + 1 < p.n;
    x *= p.global_scale;
    y *= p.global_scale;
    if (p.bias) {
      const h16* bias = static_cast<const h16*>(p.bias);
      x += to_float<bf16>(bias[col]);
      if (pair) y += to_float<bf16>(bias[col + 1]);
    }
    const u32 packed = pack2<bf16>(x, y);
    h16* out = static_cast<h16*>(p.c) + static_cast<long long>(row) * p.ldc + col;
    if (pair && p.vector_store) {
      *reinterpret_cast<u32*>(out) = packed;
    } else {
      out[0] = static_cast<h16>(packed & 0xFFFF);
      if (pair) out[1] = static_cast<h16>(packed >> 16);
    }
  }

  // Output (row, col) alone (a wgmma fragment's neighbours are rows, not columns), with the
  // column's bias already read.
  __device__ void store_one(const Cursor& at, int r, int c, float x, float bias) const {
    typedef unsigned short h16;
    const int row = at.m_tile * Cfg::rows + r;
    const int col = at.n_tile * Cfg::tile_n + c;
    if (row >= p.m || col >= p.n) return;
    x = x * p.global_scale + bias;
    static_cast<h16*>(p.c)[static_cast<long long>(row) * p.ldc + col] =
        static_cast<h16>(pack2<bf16>(x, 0.f) & 0xFFFF);
  }

  // The accumulators' first valid_rows rows as a row-major rows x tile_n fp32 partial at
  // `dst` (global workspace or shared memory).
  __device__ void write_partial(float* dst, int valid_rows, const Acc& acc) const {
    if constexpr (Cfg::wgmma) {
      for_each_wgmma_element(acc, [&](int r, int c, int, float v) {
        if (r < valid_rows) dst[r * Cfg::tile_n + c] = v;
      });
    } else {
#pragma unroll
      for (int mb = 0; mb < Cfg::m_blocks; ++mb)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          if (frag_row(mb, 2 * h) >= valid_rows) continue;
#pragma unroll
          for (int j = 0; j < Cfg::warp_tiles; ++j)
            *reinterpret_cast<F2*>(dst + frag_row(mb, 2 * h) * Cfg::tile_n + frag_col(j)) =
                F2{acc[mb][j][2 * h], acc[mb][j][2 * h + 1]};
        }
    }
  }

  // wgmma kernels publish a partial in fragment order: float4 i of consumer thread t at
  // (i * threads + t) * 4, so each warp stores and loads 512 contiguous bytes (the row-major
  // partial took one 4-byte store per accumulator), and the last arriver sums the sharers'
  // partials in block order straight into its accumulators, whose epilogue is then a whole
  // tile's. (H200 trace, 10240x8192 M = 256, 128x256 tiles of 2-3 sharers: the row-major sum,
  // one chain of sharer loads after the other, took 24 us of a 107 us kernel.)
  static constexpr int fragment_float4s = Cfg::acc_outer * Cfg::acc_inner;
  static_assert(!Cfg::wgmma || fragment_float4s * 4 * Cfg::threads == Cfg::rows * Cfg::tile_n,
                "the consumers' fragments make up the tile");
  __device__ static float* fragment(float* partial, int i) {
    return partial + (i * Cfg::threads + static_cast<int>(threadIdx.x)) * 4;
  }
  __device__ void write_fragments(float* dst, const Acc& acc) const {
#pragma unroll
    for (int i = 0; i < fragment_float4s; ++i) {
      const float(&v)[4] = acc[i / Cfg::acc_inner][i % Cfg::acc_inner];
      *reinterpret_cast<F4*>(fragment(dst, i)) = F4{v[0], v[1], v[2], v[3]};
    }
  }
  // kChunk float4s of every sharer in flight at once, sharer after sharer (the same addition
  // order, so the same bits, whichever block is last).
  template <class Partial>
  __device__ void sum_fragments(int first_block, int last_block, const Partial& partial,
                                Acc& acc) const {
    constexpr int kChunk = fragment_float4s < 8 ? fragment_float4s : 8;
    static_assert(fragment_float4s % kChunk == 0, "chunks tile the fragments");
#pragma unroll
    for (int c0 = 0; c0 < fragment_float4s; c0 += kChunk) {
#pragma unroll
      for (int i = c0; i < c0 + kChunk; ++i)
        load_cg4(fragment(partial(first_block), i), acc[i / Cfg::acc_inner][i % Cfg::acc_inner]);
#pragma unroll 2
      for (int b = first_block + 1; b <= last_block; ++b) {
        float v[kChunk][4];
#pragma unroll
        for (int i = 0; i < kChunk; ++i) load_cg4(fragment(partial(b), c0 + i), v[i]);
#pragma unroll
        for (int i = 0; i < kChunk; ++i)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            acc[(c0 + i) / Cfg::acc_inner][(c0 + i) % Cfg::acc_inner][e] += v[i][e];
      }
    }
  }

  // Called by all threads when a block finishes its share [kt_first, at.kt] of a tile;
  // `segment` counts the block's calls (for the trace only).
  __device__ void finish_segment(const Stripe& stripe, const Cursor& at, int kt_first, Acc& acc,
                                 int segment) const {
    reduce_warps_k(acc);
    if (kt_first == 0 && at.kt == p.k_tiles - 1) {  // the whole tile: store it
      if (wk == 0) store_tile(at, acc);
      return;
    }
    if (p.cluster_blocks > 1) {
      reduce_in_cluster(at, acc, segment);
      return;
    }
    // A partial. The blocks sharing this tile are first_block..last_block; each publishes
    // in slot 0 when the tile is its first one, slot 1 when it is its last. Only the first
    // block can have started in an earlier tile.
    const int tile_start = at.tile * p.k_tiles;
    const int first_block = stripe.block_of(tile_start);
    const int last_block = stripe.block_of(tile_start + p.k_tiles - 1);
    const int first_slot = stripe.begin(first_block) < tile_start ? 1 : 0;
    constexpr int slot_floats = Cfg::rows * Cfg::tile_n;
    auto partial = [&](int b) {
      return p.workspace + (2LL * b + (b == first_block ? first_slot : 0)) * slot_floats;
    };
    const int rows_left = p.m - at.m_tile * Cfg::rows;
    const int valid_rows = rows_left < Cfg::rows ? rows_left : Cfg::rows;
    if constexpr (Cfg::wgmma) {
      write_fragments(partial(blockIdx.x), acc);
    } else if (wk == 0) {
      write_partial(partial(blockIdx.x), valid_rows, acc);
    }
    // One release-acquire atomic by one thread after the barrier (the grid-barrier pattern):
    // a fence in every thread made this path cost tens of microseconds, and a separate
    // sequentially consistent fence cost more than the atomic alone.
    __shared__ int last;
    sync_consumers();
    if (threadIdx.x == 0) {
      const int arrived = atomic_add_acq_rel_gpu(p.locks + at.tile, 1);
      last = arrived == last_block - first_block;
      // Ready for the next launch (kernel boundaries order it); every sharer has arrived.
      if (last) p.locks[at.tile] = 0;
    }
    sync_consumers();
    trace_arrival(segment, last);
    if (!last) return;
    if constexpr (Cfg::wgmma) {
      sum_fragments(first_block, last_block, partial, acc);
      store_tile(at, acc);
      return;
    }
    // The last arriver sums every partial (its own included) and stores the tile. With few
    // rows, one thread per 4 columns would leave most threads idle, each walking a chain of
    // L2 round trips over the sharers: then `groups` thread groups each sum an interleaved
    // subset of the sharers, and the group sums are added in group order through shared
    // memory. The order depends only on the plan, so the result is bitwise reproducible.
    constexpr int quads_per_row = Cfg::tile_n / 4;
    const int items = valid_rows * quads_per_row;
    const int sharers = last_block - first_block + 1;
    const int fit = Cfg::threads / items;
    const int groups = fit < 1 ? 1 : (fit < sharers ? fit : sharers);
    if (groups == 1) {
      // A thread sums kBatch of its items at once, sharer by sharer: their loads are
      // independent, so a tile of 64 rows waits for `sharers` L2 round trips instead of
      // items/threads chains of them (2688x4096 M = 64, 7 sharers: 6.4 us in the trace).
      // With 1-2 m-blocks the batch's registers would spill the main loop's (128 at most),
      // and the wgmma kernel's too (its wgmma loop then spilled its loader state): there the
      // sharer loop is unrolled instead.
      constexpr int kBatch = Cfg::m_blocks <= 2 || Cfg::wgmma ? 1 : 8;
      static_assert(Cfg::threads % quads_per_row == 0, "a thread's items share a column");
      for (int q0 = threadIdx.x; q0 < items; q0 += kBatch * Cfg::threads) {
        // Item q0 + i * threads lies i * threads / quads_per_row rows below item q0.
        const int base = (q0 / quads_per_row) * Cfg::tile_n + (q0 % quads_per_row) * 4;
        const auto offset = [&](int i) {
          return base + i * (Cfg::threads / quads_per_row) * Cfg::tile_n;
        };
        const auto live = [&](int i) { return q0 + i * Cfg::threads < items; };
        float sum[kBatch][4];
#pragma unroll
        for (int i = 0; i < kBatch; ++i)
          if (live(i)) load_cg4(partial(first_block) + offset(i), sum[i]);
#pragma unroll(kBatch == 1 ? 4 : 1)
        for (int b = first_block + 1; b <= last_block; ++b) {
          const float* src = partial(b);
          float v[kBatch][4];
#pragma unroll
          for (int i = 0; i < kBatch; ++i)
            if (live(i)) load_cg4(src + offset(i), v[i]);
#pragma unroll
          for (int i = 0; i < kBatch; ++i)
#pragma unroll
            for (int e = 0; e < 4; ++e) sum[i][e] += v[i][e];
        }
#pragma unroll
        for (int i = 0; i < kBatch; ++i) {
          if (!live(i)) continue;
          const int q = q0 + i * Cfg::threads;
          const int r = q / quads_per_row, c = (q % quads_per_row) * 4;
          store_pair(at, r, c, sum[i][0], sum[i][1]);
          store_pair(at, r, c + 2, sum[i][2], sum[i][3]);
        }
      }
      return;
    }
    F4* group_sums = reinterpret_cast<F4*>(smem + Cfg::stages * Cfg::stage_bytes);
    const int g = threadIdx.x / items, q = threadIdx.x - g * items;
    const int r = q / quads_per_row, c = (q % quads_per_row) * 4;
    if (g < groups) {
      F4 sum{0.f, 0.f, 0.f, 0.f};
#pragma unroll 2
      for (int b = first_block + g; b <= last_block; b += groups) {
        float v[4];
        load_cg4(partial(b) + r * Cfg::tile_n + c, v);
        sum.x += v[0], sum.y += v[1], sum.z += v[2], sum.w += v[3];
      }
      group_sums[threadIdx.x] = sum;
    }
    sync_consumers();
    if (g == 0) {
      F4 sum = group_sums[q];
      for (int h = 1; h < groups; ++h) {
        const F4 v = group_sums[h * items + q];
        sum.x += v.x, sum.y += v.y, sum.z += v.z, sum.w += v.w;
      }
      store_pair(at, r, c, sum.x, sum.y);
      store_pair(at, r, c + 2, sum.z, sum.w);
    }
  }

  // The sharers of the tile are this block's cluster, rank r holding the r-th k-range. Each
  // parks its partial in its own shared memory; after a cluster barrier, rank r sums its
  // share of the tile's columns over all ranks in rank order, read straight from their
  // shared memory, and stores it. No workspace, fence or atomic: the publish-and-arrive round
  // trips through L2 took ~2 us of a ~9 us small layer (H200 trace).
  __device__ void reduce_in_cluster(const Cursor& at, const Acc& acc, int segment) const {
#if __CUDA_ARCH__ >= 900
    constexpr int kMaxRanks = 8;
    const int rows_left = p.m - at.m_tile * Cfg::rows;
    const int valid_rows = rows_left < Cfg::rows ? rows_left : Cfg::rows;
    static_assert(Cfg::rows * Cfg::tile_n * 4 <= Cfg::smem_bytes,
                  "a partial fits in shared memory");
    float* part = reinterpret_cast<float*>(smem);
    sync_consumers();  // every warp is done with the stages and the k-split slots
    if (wk == 0) write_partial(part, valid_rows, acc);
    cluster_sync();
    trace_arrival(segment, cluster_rank() == 0);
    const int ranks = p.cluster_blocks;
    constexpr int quads_per_row = Cfg::tile_n / 4;
    const int items = valid_rows * quads_per_row;
    const int share = (items + ranks - 1) / ranks;
    const int first = static_cast<int>(cluster_rank()) * share;
    const int end = first + share < items ? first + share : items;
    for (int q = first + threadIdx.x; q < end; q += Cfg::threads) {
      const int r = q / quads_per_row, c = (q % quads_per_row) * 4;
      const u32 local = smem_addr + (r * Cfg::tile_n + c) * 4;
      float sum[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
      for (int j0 = 0; j0 < kMaxRanks; j0 += 4) {  // four loads in flight, then add in order
        float v[4][4];
#pragma unroll
        for (int j = 0; j < 4; ++j)
          if (j0 + j < ranks) load_cluster4(cluster_map(local, j0 + j), v[j]);
#pragma unroll
        for (int j = 0; j < 4; ++j)
          if (j0 + j < ranks)
#pragma unroll
            for (int e = 0; e < 4; ++e) sum[e] += v[j][e];
      }
      store_pair(at, r, c, sum[0], sum[1]);
      store_pair(at, r, c + 2, sum[2], sum[3]);
    }
    // This block's partial stays readable until every rank has read it (the loads are done:
    // their values were stored above).
    cluster_wait_all();
#else
    (void)at, (void)acc, (void)segment;
    asm volatile("trap;");  // clusters exist from sm_90 on; the host never asks for them below
#endif
  }

  __device__ void run() const {
    trace(kTraceEntry);
    const Stripe stripe = Stripe::of(p);
    const BlockUnits mine = BlockUnits::of(blockIdx.x, p);
    if (p.cluster_blocks > 1 && (Cfg::specialized || p.tile_sharers != p.cluster_blocks))
      asm volatile("trap;");  // host and kernel disagree on the cluster split
    if constexpr (Cfg::specialized) {
      run_specialized(stripe, mine);
    } else {
      run_block_pipeline(stripe, mine);
    }
    trace(kTraceEnd);
    trace_value(kTraceUnits, static_cast<u64>(mine.count));
  }

  // A segment ends after the unit at `at` when that is the tile's last k-tile or the block's
  // last unit (`last_unit`); end_segment then reduces and stores it, and the next unit starts
  // a fresh sum.
  __device__ bool segment_ends(const Cursor& at, bool last_unit) const {
    return at.kt == p.k_tiles - 1 || last_unit;
  }
  __device__ void end_segment(const Stripe& stripe, const Cursor& at, int& seg_first_kt, Acc& acc,
                              int& segment) const {
    trace_segment(segment, kTraceSegStart);
    finish_segment(stripe, at, seg_first_kt, acc, segment);
    trace_segment(segment, kTraceSegDone);
    trace_value(kTraceSegments, static_cast<u64>(segment + 1));
    ++segment;
    if constexpr (!Cfg::wgmma) zero(acc);
    seg_first_kt = 0;
  }

  // Every thread copies and computes: a cp.async ring of Cfg::stages slots, one block-wide
  // barrier per unit.
  __device__ void run_block_pipeline(const Stripe& stripe, const BlockUnits& mine) const {
    const int count = mine.count;
    Cursor computing = Cursor::at(mine.first, p);
    StageLoader<Cfg> loader(p, computing);
    {
      // The prologue's weights first: with a programmatic dependent launch they stream in
      // while the previous kernel finishes; x (and the workspace, the locks and y) only
      // after griddep_wait. One commit group per stage as in the loop (the first one also
      // holds every prologue weight copy).
      StageLoader<Cfg> a_loader = loader;
#pragma unroll
      for (int s = 0; s < Cfg::stages - 1; ++s) {
        if (s < count) {
          loader.load_weights(smem_addr + s * Cfg::stage_bytes);
          loader.advance();
        }
      }
      griddep_wait();
#pragma unroll
      for (int s = 0; s < Cfg::stages - 1; ++s) {
        if (s < count) {
          a_loader.load_a(smem_addr + s * Cfg::stage_bytes);
          a_loader.advance();
        }
        cp_async_commit();
      }
    }
    griddep_launch_dependents();
    trace(kTraceLoadsIssued);
    Acc acc;
    zero(acc);
    int seg_first_kt = computing.kt;
    bool fresh = true;
    int slot = 0, load_slot = Cfg::stages - 1;
    int segment = 0;  // finish_segment calls so far
    for (int i = 0; i < count; ++i) {
      cp_async_wait<Cfg::stages - 2>();
      if constexpr (Cfg::wgmma) fence_proxy_async_shared();
      __syncthreads();
      if (i == 0) trace(kTraceFirstData);
      if (i + Cfg::stages - 1 < count) {
        loader.load(smem_addr + load_slot * Cfg::stage_bytes);
        loader.advance();
      }
      cp_async_commit();
      load_slot = load_slot + 1 == Cfg::stages ? 0 : load_slot + 1;
      compute_stage(slot, acc, fresh);
      slot = slot + 1 == Cfg::stages ? 0 : slot + 1;
      fresh = segment_ends(computing, i + 1 == count);
      if (fresh) end_segment(stripe, computing, seg_first_kt, acc, segment);
      computing.advance(p);
    }
    cp_async_wait<0>();
  }

  // Warp specialization (Cfg::specialized): the warpgroup after the consumers copies, the
  // consumers compute. Slot s has two mbarriers: full (one arrival per producer thread, when
  // its copies have landed) and empty (one arrival per consumer thread, after its last read
  // of the slot). Each consumer warpgroup waits only for its data, so the two drift apart
  // and one's drain at a stage end overlaps the other's wgmmas.
  __device__ void run_specialized(const Stripe& stripe, const BlockUnits& mine) const {
    __shared__ __align__(8) u64 barriers[2 * Cfg::stages];
    const u32 full = smem_u32(barriers), empty = full + 8 * Cfg::stages;
    if (threadIdx.x == 0) {
      for (int s = 0; s < Cfg::stages; ++s) {
        mbarrier_init(full + 8 * s, Cfg::producers);
        mbarrier_init(empty + 8 * s, Cfg::threads);
      }
    }
    __syncthreads();  // the only barrier of all launch_threads threads
    griddep_launch_dependents();
    const Cursor start = Cursor::at(mine.first, p);
    // Warp-uniform for the compiler too (a broadcast), which register reallocation needs.
    const int warpgroup = __shfl_sync(0xFFFFFFFFu, static_cast<int>(threadIdx.x) / 128, 0);
    if (warpgroup == Cfg::threads / 128) {
      setmaxnreg_dec<Cfg::producer_registers>();
      StageLoader<Cfg, Cfg::producers, Cfg::threads> loader(p, start);
      // The first slot's weights stream before griddep_wait, its x after (as in
      // run_block_pipeline; one loader only: the producer has 40 registers).
      if (mine.count > 0) loader.load_weights(smem_addr);
      griddep_wait();
      for (int f = 0; f < mine.count; ++f) {
        const int slot = f % Cfg::stages, round = f / Cfg::stages;
        if (round > 0) mbarrier_wait(empty + 8 * slot, (round - 1) & 1);
        if (f > 0) loader.load_weights(smem_addr + slot * Cfg::stage_bytes);
        loader.load_a(smem_addr + slot * Cfg::stage_bytes);
        loader.advance();
        cp_async_mbarrier_arrive(full + 8 * slot);
      }
      cp_async_commit();
      cp_async_wait<0>();  // no copy outlives its thread
      return;
    }
    setmaxnreg_inc<Cfg::consumer_registers>();
    griddep_wait();  // the consumers read the bias and write y, the workspace and the locks
    Cursor computing = start;
    Acc acc;
    zero(acc);
    int seg_first_kt = computing.kt;
    int segment = 0;
    bool fresh = true;
    for (int i = 0; i < mine.count; ++i) {
      const int slot = i % Cfg::stages;
      mbarrier_wait(full + 8 * slot, (i / Cfg::stages) & 1);
      fence_proxy_async_shared();  // the producer's generic-proxy writes, for wgmma's reads
      if (i == 0) trace(kTraceFirstData);
      compute_stage(slot, acc, fresh);  // ends with all of its wgmmas complete
      mbarrier_arrive(empty + 8 * slot);
      fresh = segment_ends(computing, i + 1 == mine.count);
      if (fresh) end_segment(stripe, computing, seg_first_kt, acc, segment);
      computing.advance(p);
    }
  }

  __device__ static void zero(Acc& acc) {
#pragma unroll
    for (int o = 0; o < Cfg::acc_outer; ++o)
#pragma unroll
      for (int j = 0; j < Cfg::acc_inner; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[o][j][e] = 0.f;
  }
};

template <class Cfg>
__device__ __forceinline__ void gemm_kernel(const GemmParams& params) {
  // 1024 for wgmma: its operand's 128-byte swizzle (the others keep static smem small).
  extern __shared__ __align__(Cfg::wgmma ? 1024 : 128) char smem[];
  u32 dynamic_bytes;
  asm("mov.u32 %0, %%dynamic_smem_size;\n" : "=r"(dynamic_bytes));
  // Traps: the host and the kernel disagree on the shared memory size, or the wgmma
  // operand's swizzle would be misaligned (see a_smem_offset).
  if (dynamic_bytes < static_cast<u32>(Cfg::smem_bytes)) asm volatile("trap;");
  if (Cfg::wgmma && (smem_u32(smem) & 1023u) != 0) asm volatile("trap;");
  GemmKernel<Cfg>(params, smem).run();
}

}  // namespace marlinrt::kern
