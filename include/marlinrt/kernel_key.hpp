// KernelKey: every compile-time parameter of one JIT-compiled kernel.
//
// A key has a canonical text form, e.g.
//   gemm/e2m1/g16/bf16/dense/t128x128/m4/s4/w256/sm_90
//   gemm/e2m1/g16/f16/moe-relu2-topkw/t64x256/m4/s4/w256/sm_80
//   gemm/e2m1/g16/bf16/dense/t128x256/m4/s4/w256/wgmma/sm_90
//   gemm/e2m1/g16/bf16/dense/t128x128/m4/s4/w256/b2/wgmma/sm_90
//   repack_weights/sm_90
// to_string() and parse() round-trip, and packed() is a 64-bit value that is
// unique per key (used as the launch-table index; no strings on the hot path).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "marlinrt/dtype.hpp"

namespace marlinrt {

enum class KernelKind : std::uint8_t {
  gemm = 0,            // the Marlin W4A16 GEMM (dense or MoE)
  repack_weights = 1,  // E2M1 [N, K/2] -> kernel tile layout
  repack_scales = 2,   // E4M3 [N, K/16] -> kernel scale layout
  selftest = 3,        // a tiny kernel that proves the JIT path end to end
};

// The quantized weight element type. Only E2M1 (NVFP4) exists today; the
// others are reserved so that keys and cache entries stay compatible.
enum class ScalarType : std::uint8_t { e2m1 = 0 };

// Epilogue activation of MoE GEMM1.
enum class Activation : std::uint8_t { none = 0, silu = 1, relu2 = 2 };

// Tile of one thread block: tile_k x tile_n weights, 16*m_blocks rows of A (1..4 m-blocks, or 8
// for the 128-row wgmma variant),
// `stages` deep cp.async pipeline, `threads` per block. `wgmma`: the sm_90a warpgroup MMA
// (compiled for sm_90a) instead of mma.sync; key text ".../w256/wgmma/sm_90".
// `resident_blocks`: 0 for the kernel's default register budget, or 2 (the 64-row wgmma kernel
// on 128x128 tiles only) for registers budgeted so that two blocks fit on an SM; key text
// ".../w256/b2/wgmma/sm_90".
// `specialized`: the 64-row wgmma kernel warp-specialized (a producer warpgroup issues every
// copy, mbarriers hand the stages over; the 128-row kernel always is, so it never sets it);
// key text ".../w256/ws/wgmma/sm_90".
struct GemmTile {
  std::uint16_t tile_k = 0;
  std::uint16_t tile_n = 0;
  std::uint8_t m_blocks = 0;
  std::uint8_t stages = 0;
  std::uint16_t threads = 0;
  bool wgmma = false;
  std::uint8_t resident_blocks = 0;
  bool specialized = false;

  friend bool operator==(const GemmTile&, const GemmTile&) = default;
};

struct KernelKey {
  KernelKind kind = KernelKind::gemm;
  ScalarType scalar = ScalarType::e2m1;
  std::uint8_t group_size = 16;
  DType activation_dtype = DType::bf16;  // f16 or bf16
  bool moe = false;
  Activation activation = Activation::none;
  bool gated = false;
  bool topk_weight = false;  // multiply rows by their top-k routing weight
  GemmTile tile{};
  int arch = 0;  // compute capability as major*10+minor: 80, 86, 89, 90

  // Throws Error(invalid_argument) naming the first bad field.
  void validate() const;
  std::string to_string() const;
  // Throws Error(invalid_argument) saying which part of the text is wrong.
  static KernelKey parse(std::string_view text);
  // Injective packing of all fields (validated keys only).
  std::uint64_t packed() const;

  friend bool operator==(const KernelKey&, const KernelKey&) = default;
};

// The NVRTC target of a key: its arch, or sm_90a for wgmma kernels.
std::string compile_target(const KernelKey& key);

// "sm_90" <-> 90. parse_arch throws for anything that is not sm_80..sm_121
// (the CUDA 13 NVRTC targets this library accepts).
int parse_arch(std::string_view text);
std::string arch_name(int arch);

}  // namespace marlinrt
