// Which work units (tile, k-tile) each GEMM block owns, and in what order it walks them.
// Plain C++ shared with the host, whose tests walk every block's sequence of a real plan.
//
// Two partitions (GemmParams::tile_step):
//   stripes     the units, tile-major, cut into gridDim.x contiguous stripes whose lengths
//               differ by at most one; tiles shared by several blocks are summed afterwards.
//               A k split (GemmParams::tile_sharers = s) is the same cut made inside each
//               tile: blocks s*t .. s*t + s-1 own tile t's k-tiles in s ranges whose lengths
//               differ by at most one, so no block straddles two tiles even where s does
//               not divide k_tiles (K = 3712: 29 k-tiles of 128)
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
  // 0: one stripe over all units. Else the cut repeats every period_blocks blocks and
  // period_units units (a k split: the sharers and the k-tiles of one tile), `extra` counting
  // inside each period.
  int period_blocks = 0, period_units = 0;

  // An even k split is the plain stripe (no division: the prologue of a small layer is on its
  // critical path).
  MARLINRT_HOST_DEVICE static Stripe of(const GemmParams& p) {
    const bool periodic = p.tile_sharers > 0 && p.stripe_extra > 0;
    return {p.stripe_units, p.stripe_extra, periodic ? p.tile_sharers : 0,
            periodic ? p.k_tiles : 0};
  }
  MARLINRT_HOST_DEVICE int begin(int b) const {
    if (period_blocks == 0) return begin_in_period(b);
    const int period = b / period_blocks;
    return period * period_units + begin_in_period(b - period * period_blocks);
  }
  MARLINRT_HOST_DEVICE int block_of(int u) const {
    if (period_blocks == 0) return block_in_period(u);
    const int period = u / period_units;
    return period * period_blocks + block_in_period(u - period * period_units);
  }

 private:
  MARLINRT_HOST_DEVICE int begin_in_period(int b) const {
    return b * units_per_block + (b < extra ? b : extra);
  }
  MARLINRT_HOST_DEVICE int block_in_period(int u) const {
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
    const Stripe stripe = Stripe::of(p);
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
