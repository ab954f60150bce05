// The GEMM's partition of work units over blocks (kernel_templates/tile_order.h), walked on
// the host exactly as the kernel walks it, for real plans: every unit is computed once, every
// output tile has one place, and band order keeps the tiles in flight together.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <vector>

#include "kernel_templates/tile_order.h"
#include "runtime/dense_dispatch.hpp"
#include "runtime/nvfp4_layout.hpp"

using namespace marlinrt;
using namespace marlinrt::detail;

namespace {

kern::GemmParams params_of(const DensePlan& plan) {
  kern::GemmParams p{};
  set_partition(plan, p);
  return p;
}

// Walks every block's units as GemmKernel::run() does; checks each unit is visited once and
// the tile -> (n_tile, m_tile) map is a bijection. (Counts, not one assertion per unit: the
// largest plans have half a million units.)
void check_walk(const DensePlan& plan) {
  const kern::GemmParams p = params_of(plan);
  const int tiles = p.m_tiles * p.n_tiles;
  std::vector<int> visits(static_cast<std::size_t>(tiles) * p.k_tiles, 0);
  std::vector<int> tile_at(static_cast<std::size_t>(tiles), -1);  // (n, m) -> tile
  long out_of_range = 0, disagreements = 0, collisions = 0, straddles = 0, misplaced = 0;
  const kern::Stripe stripe = kern::Stripe::of(p);
  for (int b = 0; b < plan.blocks; ++b) {
    const kern::BlockUnits mine = kern::BlockUnits::of(b, p);
    REQUIRE(mine.count >= 0);
    // A k split: block b owns part b % sharers of tile b / sharers, and the reduction finds
    // the tile's sharers where they are.
    if (p.tile_sharers > 0 && mine.count > 0) {
      const int tile = b / p.tile_sharers;
      if ((mine.first + mine.count - 1) / p.k_tiles != tile || mine.first / p.k_tiles != tile)
        ++straddles;
      if (stripe.block_of(mine.first) != b || stripe.block_of(mine.first + mine.count - 1) != b ||
          stripe.block_of(tile * p.k_tiles) != tile * p.tile_sharers ||
          stripe.block_of((tile + 1) * p.k_tiles - 1) != (tile + 1) * p.tile_sharers - 1)
        ++misplaced;
    }
    kern::Cursor c = kern::Cursor::at(mine.first, p);
    for (int i = 0; i < mine.count; ++i, c.advance(p)) {
      if (c.tile < 0 || c.tile >= tiles || c.n_tile < 0 || c.n_tile >= p.n_tiles || c.m_tile < 0 ||
          c.m_tile >= p.m_tiles) {
        ++out_of_range;
        continue;
      }
      // Advancing and placing from scratch agree.
      const kern::Cursor fresh = kern::Cursor::at(c.tile * p.k_tiles + c.kt, p);
      if (fresh.n_tile != c.n_tile || fresh.m_tile != c.m_tile) ++disagreements;
      ++visits[static_cast<std::size_t>(c.tile) * p.k_tiles + c.kt];
      int& owner = tile_at[static_cast<std::size_t>(c.n_tile) * p.m_tiles + c.m_tile];
      if (owner != -1 && owner != c.tile) ++collisions;
      owner = c.tile;
    }
  }
  CHECK(out_of_range == 0);
  CHECK(straddles == 0);
  CHECK(misplaced == 0);
  CHECK(disagreements == 0);
  CHECK(collisions == 0);
  CHECK(std::count(visits.begin(), visits.end(), 1) == static_cast<long>(visits.size()));
}

}  // namespace

TEST_CASE("every block's units cover the GEMM once, in stripes and in band order",
          "[dispatch][tile-order]") {
  const std::int64_t shapes[][2] = {{57344, 8192}, {4096, 4096}, {2688, 4096}, {10304, 2688},
                                    {2688, 3712},  {1856, 672},  {72, 48}};
  for (auto [n, k] : shapes) {
    for (std::int64_t m : {1, 33, 100, 1000, 4096, 5000}) {
      for (const char* order : {"auto", "stripes", "bands", "bands:1", "bands:5", "bands:4096"}) {
        INFO("n " << n << " k " << k << " m " << m << " order " << order);
        const DensePlan plan =
            plan_dense(m, padded_n(n), padded_k(k), DType::bf16, 90, 132, 232448, std::nullopt,
                       DenseMma::automatic, parse_dense_order(order));
        check_walk(plan);
      }
    }
  }
}

TEST_CASE("the tiles of one wave in band order share their m-tiles and n-tiles",
          "[dispatch][tile-order]") {
  // 57344x8192 at M = 4096: the tiles in flight together (tiles 0 .. blocks-1) cover band_m
  // m-tiles and about blocks / band_m n-tiles, not the whole output as the stripes did.
  const DensePlan plan = plan_dense(4096, 57344, 8192, DType::bf16, 90, 132, 232448);
  REQUIRE(plan.tile_step == plan.blocks);
  const kern::GemmParams p = params_of(plan);
  std::set<int> ms, ns;
  for (int t = 0; t < plan.blocks; ++t) {
    kern::Cursor c = kern::Cursor::at(t * p.k_tiles, p);
    ms.insert(c.m_tile);
    ns.insert(c.n_tile);
  }
  INFO("band_m " << plan.band_m << " m_tiles " << plan.m_tiles << " blocks " << plan.blocks);
  CHECK(static_cast<int>(ms.size()) == plan.band_m);
  CHECK(static_cast<int>(ns.size()) <= (plan.blocks + plan.band_m - 1) / plan.band_m);
  CHECK(plan.band_m < plan.m_tiles);
}
