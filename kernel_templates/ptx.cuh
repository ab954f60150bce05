// Thin wrappers over the PTX instructions the kernels use. Templates include no
// toolkit or standard headers, so NVRTC needs no include path and parses little.
#pragma once

namespace marlinrt::kern {

typedef unsigned int u32;
typedef unsigned long long u64;

// Global -> shared 16-byte async copy; `src_bytes` < 16 zero-fills the rest
// (0 gives a zero chunk without reading global memory).
__device__ __forceinline__ void cp_async16(u32 smem_addr, const void* gmem, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr), "l"(gmem),
               "r"(src_bytes));
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ u32 smem_u32(const void* p) {
  u32 r;
  asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }\n" : "=r"(r) : "l"(p));
  return r;
}

__device__ __forceinline__ float bits_to_float(u32 b) {
  float f;
  asm("mov.b32 %0, %1;\n" : "=f"(f) : "r"(b));
  return f;
}

// Four 8x8 b16 matrices from shared memory: the A operand of m16n8k16.
__device__ __forceinline__ void ldmatrix_x4(u32 (&r)[4], u32 smem_addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr));
}

// D = A * B + D, f32 accumulators. kBf16 selects the input type. Not volatile: it is
// pure register arithmetic, and the scheduler must be free to interleave it with the decode.
template <bool kBf16>
__device__ __forceinline__ void mma_16816(float (&d)[4], const u32 (&a)[4], u32 b0, u32 b1) {
  if constexpr (kBf16) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// ---- wgmma (sm_90a): warpgroup MMA with A in registers, B in shared memory ----------------
// A K-major shared-memory operand with the 128-byte swizzle: rows of 64 16-bit values (128
// bytes), 8-row blocks 1024 bytes apart (the stride offset; the leading offset is unused and
// set to 1), 16-byte chunk c of row r stored at chunk c ^ (r % 8). Layout type 1 (bits 62-63).
__device__ __forceinline__ u64 wgmma_desc_sw128(u32 smem_addr) {
  return static_cast<u64>((smem_addr & 0x3FFFFu) >> 4) | 1ull << 16 |
         static_cast<u64>(1024 >> 4) << 32 | 1ull << 62;
}

// Orders this thread's register writes (A fragments, accumulators) before later wgmmas.
__device__ __forceinline__ void wgmma_fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
// Waits until at most N committed groups are pending (their registers are then free).
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// ---- mbarrier: the stage handshake of the warp-specialized kernel -----------------------
__device__ __forceinline__ void mbarrier_init(u32 bar, u32 count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbarrier_arrive(u32 bar) {
  asm volatile("{ .reg .b64 state; mbarrier.arrive.shared::cta.b64 state, [%0]; }\n" ::"r"(bar)
               : "memory");
}
// The barrier arrives once all of this thread's earlier cp.async copies have landed (counted
// in the barrier's expected arrivals: no increment).
__device__ __forceinline__ void cp_async_mbarrier_arrive(u32 bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}
// Blocks until the barrier's phase of the given parity (0 for its first phase, 1 for the
// next, ...) has completed.
__device__ __forceinline__ void mbarrier_wait(u32 bar, u32 parity) {
  u32 done;
  do {
    asm volatile(
        "{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; "
        "selp.u32 %0, 1, 0, p; }\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
}
// Moves registers between warpgroups (sm_90a): the producer gives up what the consumers take.
template <int kRegisters>
__device__ __forceinline__ void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegisters));
}
template <int kRegisters>
__device__ __forceinline__ void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegisters));
}

// A barrier of `threads` threads (a multiple of 32) on hardware barrier `id` (1..15; 0 is
// __syncthreads'): the consumer warps of a warp-specialized kernel, without its producer.
__device__ __forceinline__ void named_barrier_sync(u32 id, u32 threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// Shared-memory writes of the generic proxy (cp.async, st.shared) become visible to the
// async proxy that wgmma reads through.
__device__ __forceinline__ void fence_proxy_async_shared() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// D[64 x N] += A[64 x 16] * B[16 x N], f32 accumulators. Warp w of the warpgroup holds
// rows 16w..16w+15 of A as an m16n8k16 A fragment and of D as N/8 m16n8 C fragments (d[j]:
// columns 8j..8j+7). B is K-major (each column's 16 k contiguous) at `desc`.
#define MARLINRT_D4(j) "+f"(d[j][0]), "+f"(d[j][1]), "+f"(d[j][2]), "+f"(d[j][3])
#define MARLINRT_D16(j) MARLINRT_D4(j), MARLINRT_D4(j + 1), MARLINRT_D4(j + 2), MARLINRT_D4(j + 3)
#define MARLINRT_WGMMA_ARGS \
  : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(accumulate)
#define MARLINRT_WGMMA(shape, type, operands, accumulate)                                    \
  "{\n.reg .pred p;\nsetp.ne.b32 p, " accumulate ", 0;\nwgmma.mma_async.sync.aligned." shape \
  ".f32." type "." type " " operands ", p, 1, 1, 0;\n}\n"
#define MARLINRT_N64_OPERANDS                                                                \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, "   \
  "%19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, " \
  "%36"
#define MARLINRT_N128_OPERANDS                                                             \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, " \
  "%19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, "  \
  "%36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, "  \
  "%53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68"
// accumulate == 0: D = A * B, the previous contents ignored (the first step of a tile, so the
// accumulators need no zeroing: zeros written between two stages' wgmmas made ptxas
// serialize them).
template <bool kBf16, int kN>
__device__ __forceinline__ void wgmma_m64nNk16(float (&d)[kN / 8][4], const u32 (&a)[4], u64 desc,
                                               u32 accumulate) {
  static_assert(kN == 64 || kN == 128, "wgmma: N is 64 or 128 here");
  if constexpr (kN == 64 && kBf16) {
    asm volatile(MARLINRT_WGMMA("m64n64k16", "bf16", MARLINRT_N64_OPERANDS, "%37")
                 : MARLINRT_D16(0), MARLINRT_D16(4) MARLINRT_WGMMA_ARGS);
  } else if constexpr (kN == 64) {
    asm volatile(MARLINRT_WGMMA("m64n64k16", "f16", MARLINRT_N64_OPERANDS, "%37")
                 : MARLINRT_D16(0), MARLINRT_D16(4) MARLINRT_WGMMA_ARGS);
  } else if constexpr (kBf16) {
    asm volatile(MARLINRT_WGMMA("m64n128k16", "bf16", MARLINRT_N128_OPERANDS, "%69")
                 : MARLINRT_D16(0), MARLINRT_D16(4), MARLINRT_D16(8),
                   MARLINRT_D16(12) MARLINRT_WGMMA_ARGS);
  } else {
    asm volatile(MARLINRT_WGMMA("m64n128k16", "f16", MARLINRT_N128_OPERANDS, "%69")
                 : MARLINRT_D16(0), MARLINRT_D16(4), MARLINRT_D16(8),
                   MARLINRT_D16(12) MARLINRT_WGMMA_ARGS);
  }
}
#undef MARLINRT_N128_OPERANDS
#undef MARLINRT_N64_OPERANDS
#undef MARLINRT_WGMMA
#undef MARLINRT_WGMMA_ARGS
#undef MARLINRT_D16
#undef MARLINRT_D4

// Packed 16-bit multiply a * (half kHalf of s in both lanes), as an fma with -0 so that +0
// products stay +0. The broadcast is written as a 16-bit move so that ptxas folds it into the
// multiply's operand selector (.H0_H0 / .H1_H1) rather than spending a PRMT on it.
#define MARLINRT_MUL2_BY_HALF(type, half)                                                      \
  asm("{ .reg .b16 lo, hi; .reg .b32 b;\n mov.b32 {lo, hi}, %2;\n mov.b32 b, {" half ", " half \
      "};\n fma.rn." type " %0, %1, b, %3; }\n"                                                \
      : "=r"(d)                                                                                \
      : "r"(a), "r"(s), "r"(0x80008000u))
template <bool kBf16, int kHalf>
__device__ __forceinline__ u32 mul2_by_half(u32 a, u32 s) {
  u32 d;
  if constexpr (kBf16 && kHalf == 0) {
    MARLINRT_MUL2_BY_HALF("bf16x2", "lo");
  } else if constexpr (kBf16) {
    MARLINRT_MUL2_BY_HALF("bf16x2", "hi");
  } else if constexpr (kHalf == 0) {
    MARLINRT_MUL2_BY_HALF("f16x2", "lo");
  } else {
    MARLINRT_MUL2_BY_HALF("f16x2", "hi");
  }
  return d;
}
#undef MARLINRT_MUL2_BY_HALF

// Two floats -> packed 16-bit, round to nearest even; `lo` lands in the low half.
template <bool kBf16>
__device__ __forceinline__ u32 pack2(float lo, float hi) {
  u32 d;
  if constexpr (kBf16) {
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(d) : "f"(hi), "f"(lo));
  } else {
    asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(d) : "f"(hi), "f"(lo));
  }
  return d;
}

// 16-bit value (low half of a register) -> float.
template <bool kBf16>
__device__ __forceinline__ float to_float(unsigned short h) {
  if constexpr (kBf16) {
    return bits_to_float(static_cast<u32>(h) << 16);
  } else {
    float f;
    asm("cvt.f32.f16 %0, %1;\n" : "=f"(f) : "h"(h));
    return f;
  }
}

__device__ __forceinline__ u32 prmt(u32 a, u32 b, u32 selector) {
  u32 d;
  asm("prmt.b32 %0, %1, %2, %3;\n" : "=r"(d) : "r"(a), "r"(b), "r"(selector));
  return d;
}

// Four floats (16-byte aligned) from L2, bypassing L1: partial sums of other blocks.
__device__ __forceinline__ void load_cg4(const float* p, float (&v)[4]) {
  asm volatile("ld.global.cg.v4.f32 {%0,%1,%2,%3}, [%4];\n"
               : "=f"(v[0]), "=f"(v[1]), "=f"(v[2]), "=f"(v[3])
               : "l"(p));
}

// Atomic add at GPU scope with acquire-release semantics: publishes what this thread (and,
// through a preceding barrier, its block) wrote, and sees what earlier arrivers published.
// Cheaper than a sequentially consistent __threadfence() followed by a relaxed atomic.
__device__ __forceinline__ int atomic_add_acq_rel_gpu(int* p, int v) {
  int old;
  asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], %2;\n"
               : "=r"(old)
               : "l"(p), "r"(v)
               : "memory");
  return old;
}

// Thread block clusters (sm_90): this block's rank, another rank's copy of a shared address,
// 16-byte loads from distributed shared memory, and the cluster-wide barrier (release /
// acquire: shared-memory writes before it are visible to every rank after it).
__device__ __forceinline__ u32 cluster_rank() {
  u32 r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
}
__device__ __forceinline__ u32 cluster_map(u32 shared_addr, u32 rank) {
  u32 r;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(r) : "r"(shared_addr), "r"(rank));
  return r;
}
__device__ __forceinline__ void load_cluster4(u32 cluster_addr, float (&v)[4]) {
  asm volatile("ld.shared::cluster.v4.f32 {%0,%1,%2,%3}, [%4];\n"
               : "=f"(v[0]), "=f"(v[1]), "=f"(v[2]), "=f"(v[3])
               : "r"(cluster_addr)
               : "memory");
}
__device__ __forceinline__ void cluster_sync() {
  asm volatile(
      "barrier.cluster.arrive.release.aligned;\n"
      "barrier.cluster.wait.acquire.aligned;\n" ::
          : "memory");
}
// Without release: orders nothing, only waits for every rank. (A release arrive also waits
// for this thread's global stores to complete, an L2 round trip.)
__device__ __forceinline__ void cluster_wait_all() {
  asm volatile(
      "barrier.cluster.arrive.relaxed.aligned;\n"
      "barrier.cluster.wait.aligned;\n" ::
          : "memory");
}

// Programmatic dependent launch (sm_90; no-ops below, and when the launch did not ask for it).
// griddep_wait: returns once the grids this one depends on (the previous kernel in the
// stream) have completed and their memory is visible; nothing they may write is touched
// before it. griddep_launch_dependents: the next kernel in the stream may start launching
// once every block of this grid has issued it or exited.
__device__ __forceinline__ void griddep_wait() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void griddep_launch_dependents() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// The GPU-wide nanosecond timer, one clock for all SMs: for diagnostic timelines only.
// The memory clobber keeps the compiler from moving loads and stores across the reading.
__device__ __forceinline__ u64 globaltimer_ns() {
  u64 t;
  asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(t)::"memory");
  return t;
}

}  // namespace marlinrt::kern
