// The tile shapes the sm_90a warpgroup-MMA kernel takes. One rule for KernelKey::validate and
// the dense dispatch; GemmConfig's static_assert in kernel_templates/gemm.cuh mirrors it.
#pragma once

#include "marlinrt/kernel_key.hpp"

namespace marlinrt::detail {

// Two warpgroups (256 threads) of 64 or 128 rows (4 or 8 m-blocks) by 128 or 256 columns.
inline bool wgmma_tile_shape(const GemmTile& t) {
  return t.threads == 256 && (t.tile_n == 128 || t.tile_n == 256) &&
         (t.m_blocks == 4 || t.m_blocks == 8);
}

// The tiles whose kernel may budget its registers for two resident blocks per SM
// (GemmTile::resident_blocks = 2): the 64-row wgmma kernel on 128x128 tiles, the one whose
// pipeline leaves room in shared memory for a second block (GemmConfig's kResidentBlocks).
inline bool wgmma_two_block_tile(const GemmTile& t) {
  return t.wgmma && t.m_blocks == 4 && t.tile_k == 128 && t.tile_n == 128 && t.threads == 256;
}

}  // namespace marlinrt::detail
