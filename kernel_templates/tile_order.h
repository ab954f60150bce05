// Which work units (tile, k-tile) each GEMM block owns, and in what order it walks them.
// Plain C++ shared with the host, whose tests walk every block's sequence of a real plan.
//
// Two partitions (GemmParams::tile_step):
//   stripes     the units, tile-major, cut into gridDim.x contiguous stripes whose lengths
//               differ by at most one; tiles shared by several blocks are summed afterwards
//   whole tiles block b owns all k-tiles of tiles b, b + tile_step, ... (large M): the tiles
//               in flight at one time are neighbours in the band order, so they share rows
//               of A and weight strips in L2
// Tile t -> (n_tile, m_tile): bands of band_m m-tiles (the last may be shorter), column after
// column inside a band; band_m = m_tiles is the plain n-major order.
#pragma once

#include "gemm_params.h"
#include "host_device.h"

namespace marlinrt::kern {

struct Stripe {
  int units_per_block, extra;  // block b owns units_per_block units, one more if b < extra

  MARLINRT_HOST_DEVICE int begin(int b) const {
    return b * units_per_block + (b < extra ? b : extra);
  }
  MARLINRT_HOST_DEVICE int block_of(int u) const {
    const int long_units = extra * (units_per_block + 1);
    return u < long_units ? u / (units_per_block + 1) : extra + (u - long_units) / units_per_block;
  }
};

// Block b's units: `count` of them, the first numbered `first` (unit = tile * k_tiles + kt).
struct BlockUnits {
  int first, count;

  MARLINRT_HOST_DEVICE static BlockUnits of(int b, const GemmParams& p) {
    if (p.tile_step > 1) {
      const int tiles = p.m_tiles * p.n_tiles;
      return {b * p.k_tiles, (b < tiles ? (tiles - 1 - b) / p.tile_step + 1 : 0) * p.k_tiles};
    }
    const Stripe stripe{p.stripe_units, p.stripe_extra};
    return {stripe.begin(b), stripe.begin(b + 1) - stripe.begin(b)};
  }
};

// A position in a block's unit sequence.
struct Cursor {
  int tile, kt, n_tile, m_tile;

  MARLINRT_HOST_DEVICE static Cursor at(int unit, const GemmParams& p) {
    Cursor c;
    c.tile = unit / p.k_tiles;
    c.kt = unit - c.tile * p.k_tiles;
    c.place(p);
    return c;
  }
  // n_tile and m_tile of `tile` in band order. Past the last tile (the loader's final
  // advance) the values are unused, but no division is by zero.
  MARLINRT_HOST_DEVICE void place(const GemmParams& p) {
    const int band_tiles = p.band_m * p.n_tiles;
    const int band = tile / band_tiles;
    const int first_m = band * p.band_m;
    const int in_band = tile - band * band_tiles;
    const int left = p.m_tiles - first_m;
    const int band_rows = left < 1 ? 1 : left < p.band_m ? left : p.band_m;
    n_tile = in_band / band_rows;
    m_tile = first_m + in_band - n_tile * band_rows;
  }
  // Next unit; true when it starts a new tile. The stripes' usual case (one band) needs no
  // division.
  MARLINRT_HOST_DEVICE bool advance(const GemmParams& p) {
    if (++kt < p.k_tiles) return false;
    kt = 0;
    tile += p.tile_step;
    if (p.tile_step == 1 && p.band_m == p.m_tiles) {
      if (++m_tile == p.m_tiles) {
        m_tile = 0;
        ++n_tile;
      }
    } else {
      place(p);
    }
    return true;
  }
};

}  // namespace marlinrt::kern
