// The Marlin-style W4A16 GEMM: C[m, n] = A[m, k] * dequant(B)[k, n] * global_scale (+ bias).
//
// Pieces, top to bottom:
//   GemmConfig      compile-time shape of a block (from the KernelKey)
//   Stripe          which (tile, k-tile) work units a block owns (striped partition)
//   load_stage      cp.async of one work unit's A rows, weights and scales into a stage
//   compute_stage   ldmatrix A, decode B in registers, mma.sync into fp32 accumulators
//   reduce_warps_k  fixed-order sum over warps that split k inside a block
//   finish_segment  write the tile, or publish a partial and let the last arriver sum
//                   all partials of the tile in block order (deterministic)
//   store_tile      the epilogue: global scale in fp32, bias, one rounding to 16 bit
#pragma once

#include "fp4_decode.cuh"
#include "gemm_params.h"
#include "ptx.cuh"

namespace marlinrt::kern {

template <int kAct, int kTileK, int kTileN, int kMBlocks, int kStages, int kThreads, bool kMoe,
          int kActFn, bool kGated, bool kTopkW>
struct GemmConfig {
  static constexpr bool bf16 = kAct == 1;
  static constexpr int tile_k = kTileK;
  static constexpr int tile_n = kTileN;
  static constexpr int m_blocks = kMBlocks;
  static constexpr int rows = 16 * kMBlocks;
  static constexpr int stages = kStages;
  static constexpr int threads = kThreads;
  static constexpr int warps = kThreads / 32;
  // Small-M kernels are latency bound: two resident blocks per SM hide more of it
  // (the host mirror is blocks_per_sm() in runtime/dense_dispatch.cpp).
    static constexpr int min_blocks_per_sm = kMBlocks <= 2 ? 2 : 1;
  static constexpr int warps_n = kTileN / 64;  // a warp owns 64 columns
  static constexpr int warps_k = warps / warps_n;
  static constexpr int k16_per_tile = kTileK / 16;
  static constexpr int k16_per_warp = k16_per_tile / warps_k;
  // Shared memory (the host computes the same numbers in runtime/gemm_shape.cpp).
  static constexpr int a_stage_bytes = rows * kTileK * 2;
  static constexpr int b_stage_bytes = kTileK * kTileN / 2;
  static constexpr int s_stage_bytes = kTileK * kTileN / 16;
  static constexpr int stage_bytes = a_stage_bytes + b_stage_bytes + s_stage_bytes;
  static constexpr int reduce_bytes = warps_k > 1 ? rows * kTileN * 4 : 0;
  static constexpr int smem_bytes = kStages * stage_bytes + reduce_bytes;

  static_assert(kTileK == 64 || kTileK == 128 || kTileK == 256, "tile_k");
  static_assert(kTileN == 64 || kTileN == 128 || kTileN == 256, "tile_n");
  static_assert(warps % warps_n == 0 && warps_k >= 1, "warps must tile the n dimension");
  static_assert(k16_per_tile % warps_k == 0, "k16 steps must split evenly over warps");
  static_assert(!kMoe, "the MoE GEMM is not implemented yet");
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

// Striped partition: the work units (tile, k-tile), tile-major, are cut into gridDim.x
// contiguous stripes of equal length (+-1), one per block, whatever the shape.
struct Stripe {
  long long units;  // tiles * k_tiles
  int blocks;

  __device__ long long begin(int b) const { return (static_cast<long long>(b) * units) / blocks; }
  __device__ int block_of(long long u) const {
    int b = static_cast<int>((u * blocks) / units);
    while (b + 1 < blocks && begin(b + 1) <= u) ++b;
    while (begin(b) > u) --b;
    return b;
  }
};

// A position in the stripe's unit sequence, advanced without divisions (the hot loop
// must not spend its issue slots on 64-bit integer division).
struct Cursor {
  int tile, kt, n_tile, m_tile;

  __device__ static Cursor at(long long unit, const GemmParams& p) {
    Cursor c;
    c.tile = static_cast<int>(unit / p.k_tiles);
    c.kt = static_cast<int>(unit % p.k_tiles);
    c.n_tile = c.tile / p.m_tiles;
    c.m_tile = c.tile % p.m_tiles;
    return c;
  }
  __device__ void advance(const GemmParams& p) {
    if (++kt < p.k_tiles) return;
    kt = 0;
    ++tile;
    if (++m_tile < p.m_tiles) return;
    m_tile = 0;
    ++n_tile;
  }
};

template <class Cfg>
struct GemmKernel {
  static constexpr bool bf16 = Cfg::bf16;
  typedef float Acc[Cfg::m_blocks][8][4];

  const GemmParams& p;
  char* smem;
  int warp, lane, wn, wk;

  __device__ GemmKernel(const GemmParams& params, char* shared)
      : p(params), smem(shared), warp(threadIdx.x / 32), lane(threadIdx.x % 32),
        wn(warp % Cfg::warps_n), wk(warp / Cfg::warps_n) {}

  __device__ char* stage(int slot) const { return smem + slot * Cfg::stage_bytes; }

  // ---- loading -------------------------------------------------------------------------
  // A row of a work unit's activations; the MoE gather will replace this.
  __device__ const char* a_row(int row) const {
    return static_cast<const char*>(p.a) + static_cast<long long>(row) * p.lda * 2;
  }

  __device__ void load_stage(const Cursor& at, int slot, u64 policy) const {
    const int kt = at.kt, n_tile = at.n_tile, m_tile = at.m_tile;
    char* s = stage(slot);
    // A: rows x tile_k halves, 16-byte chunks, XOR-swizzled by row to spread banks.
    constexpr int a_chunks_per_row = Cfg::tile_k / 8;
    constexpr int a_chunks = Cfg::rows * a_chunks_per_row;
#pragma unroll
    for (int c = threadIdx.x; c < a_chunks; c += Cfg::threads) {
      const int r = c / a_chunks_per_row, ch = c % a_chunks_per_row;
      const int row = m_tile * Cfg::rows + r;
      const int col = kt * Cfg::tile_k + ch * 8;
      const bool ok = row < p.m && col < p.k;
      const void* src = ok ? a_row(row) + col * 2 : p.a;
      cp_async16(smem_u32(s + r * Cfg::tile_k * 2 + ((ch ^ (r & 7)) * 16)), src, ok ? 16 : 0);
    }
    // B: warps_n strips of k16_per_tile units (512 bytes each), contiguous in global memory.
    const long long k_units = p.k_padded / 16;
    const long long kb0 = static_cast<long long>(kt) * Cfg::k16_per_tile;
    const long long nb0 = static_cast<long long>(n_tile) * Cfg::warps_n;
    constexpr int strip_chunks = Cfg::k16_per_tile * 32;
    char* sb = s + Cfg::a_stage_bytes;
#pragma unroll
    for (int c = threadIdx.x; c < Cfg::b_stage_bytes / 16; c += Cfg::threads) {
      const int strip = c / strip_chunks, rest = c % strip_chunks;
      const char* src = static_cast<const char*>(p.b) + ((nb0 + strip) * k_units + kb0) * 512 +
                        rest * 16;
      cp_async16_stream(smem_u32(sb + c * 16), src, policy);
    }
    // Scales: the same strips, 64 bytes per unit.
    constexpr int s_strip_chunks = Cfg::k16_per_tile * 4;
    char* ss = sb + Cfg::b_stage_bytes;
#pragma unroll
    for (int c = threadIdx.x; c < Cfg::s_stage_bytes / 16; c += Cfg::threads) {
      const int strip = c / s_strip_chunks, rest = c % s_strip_chunks;
      const char* src = static_cast<const char*>(p.scales) +
                        ((nb0 + strip) * k_units + kb0) * 64 + rest * 16;
      cp_async16_stream(smem_u32(ss + c * 16), src, policy);
    }
  }

  // ---- math ----------------------------------------------------------------------------
  __device__ void compute_stage(int slot, Acc& acc) const {
    const char* s = stage(slot);
    const char* sb = s + Cfg::a_stage_bytes;
    const char* ss = sb + Cfg::b_stage_bytes;
    const int g = lane / 4;
    // Large m-block counts keep one k16 step live at a time (register pressure).
#pragma unroll(Cfg::m_blocks > 2 ? 1 : Cfg::k16_per_warp)
    for (int i = 0; i < Cfg::k16_per_warp; ++i) {
      const int kk = wk * Cfg::k16_per_warp + i;
      const int unit = wn * Cfg::k16_per_tile + kk;
      const U4 bw = *reinterpret_cast<const U4*>(sb + unit * 512 + lane * 16);
      const U2 sw = *reinterpret_cast<const U2*>(ss + unit * 64 + g * 8);
      u32 a[Cfg::m_blocks][4];
#pragma unroll
      for (int mb = 0; mb < Cfg::m_blocks; ++mb) {
        const int mat = lane / 8;
        const int r = mb * 16 + (mat & 1) * 8 + (lane & 7);
        const int ch = kk * 2 + (mat >> 1);
        ldmatrix_x4(a[mb], smem_u32(s + r * Cfg::tile_k * 2 + ((ch ^ (r & 7)) * 16)));
      }
      u32 scale[8];
      decode_scales<bf16>(sw.x, sw.y, scale);
      const u32 words[4] = {bw.x, bw.y, bw.z, bw.w};
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        u32 f[4];
        decode_e2m1_word<bf16>(words[j], f);
        const u32 b00 = mul2<bf16>(f[0], scale[2 * j]), b01 = mul2<bf16>(f[1], scale[2 * j]);
        const u32 b10 = mul2<bf16>(f[2], scale[2 * j + 1]);
        const u32 b11 = mul2<bf16>(f[3], scale[2 * j + 1]);
#pragma unroll
        for (int mb = 0; mb < Cfg::m_blocks; ++mb) {
          mma_16816<bf16>(acc[mb][2 * j], a[mb], b00, b01);
          mma_16816<bf16>(acc[mb][2 * j + 1], a[mb], b10, b11);
        }
      }
    }
  }

  // Fragment element (mb, j, e) of this lane sits at row mb*16 + g (+8 for e >= 2) and
  // column wn*64 + j*8 + 2t (+1 for odd e) of the block's tile.
  __device__ int frag_row(int mb, int e) const { return mb * 16 + lane / 4 + (e >= 2 ? 8 : 0); }
  __device__ int frag_col(int j) const { return wn * 64 + j * 8 + (lane % 4) * 2; }

  // Sum the accumulators of the warps that split k, in a fixed order, into wk == 0.
  __device__ void reduce_warps_k(Acc& acc) const {
    if constexpr (Cfg::warps_k > 1) {
      float* red = reinterpret_cast<float*>(smem + Cfg::stages * Cfg::stage_bytes);
      for (int step = Cfg::warps_k - 1; step >= 0; --step) {
        if (wk == step) {
#pragma unroll
          for (int mb = 0; mb < Cfg::m_blocks; ++mb)
#pragma unroll
            for (int j = 0; j < 8; ++j)
#pragma unroll
              for (int h = 0; h < 2; ++h) {
                F2* cell = reinterpret_cast<F2*>(red + frag_row(mb, 2 * h) * Cfg::tile_n +
                                                 frag_col(j));
                float x = acc[mb][j][2 * h], y = acc[mb][j][2 * h + 1];
                if (step != Cfg::warps_k - 1) {
                  const F2 prev = *cell;
                  x = prev.x + x;
                  y = prev.y + y;
                }
                if (step == 0) {
                  acc[mb][j][2 * h] = x;
                  acc[mb][j][2 * h + 1] = y;
                } else {
                  *cell = F2{x, y};
                }
              }
        }
        __syncthreads();
      }
    }
  }

  // ---- epilogue ------------------------------------------------------------------------
  __device__ void store_tile(const Cursor& at, const Acc& acc) const {
#pragma unroll
    for (int mb = 0; mb < Cfg::m_blocks; ++mb)
#pragma unroll
      for (int h = 0; h < 2; ++h)
#pragma unroll
        for (int j = 0; j < 8; ++j)
          store_pair(at, frag_row(mb, 2 * h), frag_col(j), acc[mb][j][2 * h],
                     acc[mb][j][2 * h + 1]);
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

  // Called by all threads when a block finishes its share [kt_first, at.kt] of a tile.
  __device__ void finish_segment(const Stripe& stripe, const Cursor& at, int kt_first,
                                 Acc& acc) const {
    reduce_warps_k(acc);
    if (kt_first == 0 && at.kt == p.k_tiles - 1) {  // the whole tile: store it
      if (wk == 0) store_tile(at, acc);
      return;
    }
    // A partial: publish it in this block's slot (0 = its first tile, 1 = its last).
    const long long tile_units = p.k_tiles;
    auto slot_of = [&](int b) {
      return static_cast<int>(stripe.begin(b) / tile_units) == at.tile ? 0 : 1;
    };
    constexpr int slot_floats = Cfg::rows * Cfg::tile_n;
    const int rows_left = p.m - at.m_tile * Cfg::rows;
    const int valid_rows = rows_left < Cfg::rows ? rows_left : Cfg::rows;
    if (wk == 0) {
      float* ws = p.workspace + (2LL * blockIdx.x + slot_of(blockIdx.x)) * slot_floats;
#pragma unroll
      for (int mb = 0; mb < Cfg::m_blocks; ++mb)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          if (frag_row(mb, 2 * h) >= valid_rows) continue;
#pragma unroll
          for (int j = 0; j < 8; ++j)
            *reinterpret_cast<F2*>(ws + frag_row(mb, 2 * h) * Cfg::tile_n + frag_col(j)) =
                F2{acc[mb][j][2 * h], acc[mb][j][2 * h + 1]};
        }
    }
    // One fence by one thread after the barrier (the grid-barrier pattern): a fence
    // in every thread made this path cost tens of microseconds.
    __shared__ int last;
    __syncthreads();
    const int first_block = stripe.block_of(static_cast<long long>(at.tile) * tile_units);
    const int last_block = stripe.block_of((at.tile + 1LL) * tile_units - 1);
    if (threadIdx.x == 0) {
      __threadfence();
      const int arrived = atomicAdd(p.locks + at.tile, 1);
      last = arrived == last_block - first_block;
      if (last) {
        p.locks[at.tile] = 0;  // ready for the next launch
        __threadfence();
      }
    }
    __syncthreads();
    if (!last) return;
    // The last arriver sums every partial (its own included) in block order, with all
    // its threads, and stores the tile.
    constexpr int quads_per_row = Cfg::tile_n / 4;
    for (int q = threadIdx.x; q < valid_rows * quads_per_row; q += Cfg::threads) {
      const int r = q / quads_per_row, c = (q % quads_per_row) * 4;
      float sum[4];
#pragma unroll 4
      for (int b = first_block; b <= last_block; ++b) {
        const float* ws = p.workspace + (2LL * b + slot_of(b)) * slot_floats + r * Cfg::tile_n + c;
        float v[4];
        load_cg4(ws, v);
#pragma unroll
        for (int e = 0; e < 4; ++e) sum[e] = b == first_block ? v[e] : sum[e] + v[e];
      }
      store_pair(at, r, c, sum[0], sum[1]);
      store_pair(at, r, c + 2, sum[2], sum[3]);
    }
  }

  __device__ void run() const {
    const Stripe stripe{static_cast<long long>(p.m_tiles) * p.n_tiles * p.k_tiles,
                        static_cast<int>(gridDim.x)};
    const long long u_begin = stripe.begin(blockIdx.x);
    const int count = static_cast<int>(stripe.begin(blockIdx.x + 1) - u_begin);
    const u64 policy = evict_first_policy();
    Cursor loading = Cursor::at(u_begin, p), computing = loading;
#pragma unroll
    for (int s = 0; s < Cfg::stages - 1; ++s) {
      if (s < count) {
        load_stage(loading, s, policy);
        loading.advance(p);
      }
      cp_async_commit();
    }
    Acc acc;
    zero(acc);
    int seg_first_kt = computing.kt;
    int slot = 0, load_slot = Cfg::stages - 1;
    for (int i = 0; i < count; ++i) {
      cp_async_wait<Cfg::stages - 2>();
      __syncthreads();
      if (i + Cfg::stages - 1 < count) {
        load_stage(loading, load_slot, policy);
        loading.advance(p);
      }
      cp_async_commit();
      load_slot = load_slot + 1 == Cfg::stages ? 0 : load_slot + 1;
      compute_stage(slot, acc);
      slot = slot + 1 == Cfg::stages ? 0 : slot + 1;
      if (computing.kt == p.k_tiles - 1 || i + 1 == count) {
        finish_segment(stripe, computing, seg_first_kt, acc);
        zero(acc);
        seg_first_kt = 0;
      }
      computing.advance(p);
    }
    cp_async_wait<0>();
  }

  __device__ static void zero(Acc& acc) {
#pragma unroll
    for (int mb = 0; mb < Cfg::m_blocks; ++mb)
#pragma unroll
      for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[mb][j][e] = 0.f;
  }
};

template <class Cfg>
__device__ __forceinline__ void gemm_kernel(const GemmParams& params) {
  extern __shared__ __align__(128) char smem[];
  u32 dynamic_bytes;
  asm("mov.u32 %0, %%dynamic_smem_size;\n" : "=r"(dynamic_bytes));
  if (dynamic_bytes < static_cast<u32>(Cfg::smem_bytes)) asm volatile("trap;");  // host/kernel disagree
  GemmKernel<Cfg>(params, smem).run();
}

}  // namespace marlinrt::kern
