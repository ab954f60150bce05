#include "runtime/dense_dispatch.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <span>

#include "runtime/fail.hpp"
#include "runtime/nvfp4_layout.hpp"
#include "runtime/wgmma_tile.hpp"

namespace marlinrt::detail {
namespace {

struct TileChoice {
  std::uint16_t tile_k, tile_n, threads;
  // Taken only when the call has at least this many (tile, k-tile) units per block slot: big
  // tiles amortize the per-stage cost, but small layers need the parallelism.
  int min_units_per_block;
  // Taken only when no tile is shared by more blocks than this (0: any): more resident
  // blocks shorten the stripes, and past ~8 sharers the last arriver's sum of their partials
  // outweighs the gain (2688x3712 M = 16, 25 sharers: 14.6 -> 18.2 us on H200).
  int max_sharers = 0;
  bool wgmma = false;                // sm_90 only (GemmTile::wgmma)
  std::uint8_t resident_blocks = 0;  // GemmTile::resident_blocks
  int max_m_tiles = 0;               // taken only for calls of at most this many m-tiles (0: any)
};

// A preference list with the fallbacks appended: 64-deep tiles divide every padded shape
// (N a multiple of 128, K of 64), so some choice always fits.
template <std::size_t N>
constexpr std::array<TileChoice, N + 2> with_fallbacks(const std::array<TileChoice, N>& lead) {
  std::array<TileChoice, N + 2> all{};
  for (std::size_t i = 0; i < N; ++i) all[i] = lead[i];
  all[N] = {64, 256, 256, 0};
  all[N + 1] = {64, 128, 256, 0};
  return all;
}

// One m-block (M <= 16) streams weights, and per-stage work is what limits it: four warps of
// 64 columns, each with eight k16 steps between barriers (256-deep k tiles), beat eight warps
// with four on every layer measured (H200, bench/tile_sweep.sh): 57344x8192 M = 1 91.1 ->
// 87.0 us, M = 16 97.0 -> 91.6; 4096x14336 19.2 -> 17.3 and 25.5 -> 20.3; 2688x4096
// 10.0 -> 8.6; 128x128 tiles, for k not a multiple of 256: 3712x2688 9.3 -> 8.1.
constexpr auto kOneMBlock = with_fallbacks<4>(
    {{{256, 128, 128, 0, 8}, {128, 128, 128, 0, 8}, {256, 128, 256, 0}, {128, 128, 256, 0}}});
// Two m-blocks: four warps of 32 columns with 16 k16 steps between barriers where every block
// slot gets a unit or more (H200, M = 32: 10240x8192 44.9 -> 35.8 us, 4096x14336 36.6 ->
// 29.3, 6144x4096 17.6 -> 15.4), but not on smaller layers (4096x4096 13.2 -> 17.7). Then
// 256 columns where the layer is big enough, else 256-deep k tiles.
constexpr auto kTwoMBlocks = with_fallbacks<4>(
    {{{256, 128, 128, 1}, {128, 256, 256, 4}, {256, 128, 256, 0}, {128, 128, 256, 0}}});
// Three or more m-blocks reuse each weight tile over more rows: 128x256 tiles of eight warps
// when the call has work enough (>= 60 units per block slot), else four warps on 128x64 tiles,
// which keep more blocks busy (H200, 128x64 with 4 warps vs the old choice: 4096x4096 M = 64
// 29.0 -> 18.8 us, 6144x4096 31.5 -> 25.0, 10304x2688 M = 256 86.8 -> 64.1, but 10240x8192
// M = 4096 2234 -> 2831 and 57344x8192 M = 256 769 -> 815).
// On sm_90 the wgmma kernel comes first (H200, bf16, same call as mma.sync: 57344x8192
// M = 64 201.9 -> 157.9 us, M = 4096 13259 -> 10434; 4096x4096 M = 256 37.1 -> 28.8, M = 4096
// 449 -> 343), with 256-deep k tiles (half the stage drains), but only where its 64x256 tiles
// leave each tile few sharers: 4096x4096 at M = 64 (8 sharers) went 16.6 -> 25.8 us.
constexpr int kWgmmaMaxSharers = 5;
// 128-column wgmma tiles serve layers whose padded N is no multiple of 256 (N = 2688, 3712).
// Where even those leave too many sharers, calls of one m-tile take them with two resident
// blocks per SM (registers budgeted for two, a k split over clusters), which hides the
// latency the single block per SM left exposed (H200, bf16, same call, M = 64, the mma.sync
// 128x64 tiles -> two-block wgmma: 3712x2688 15.3 -> 11.4 us, 2688x3712 13.0 -> 11.8; with
// one block per SM those tiles took 16.8 and 14.5). Not with more m-tiles: at M = 128 and
// 256 two blocks lost to one on every small layer measured (3712x2688 M = 256 26.4 -> 30.9).
constexpr auto kLargeM = with_fallbacks<8>({{{256, 256, 256, 0, kWgmmaMaxSharers, true},
                                             {128, 256, 256, 0, kWgmmaMaxSharers, true},
                                             {256, 128, 256, 0, kWgmmaMaxSharers, true},
                                             {128, 128, 256, 0, kWgmmaMaxSharers, true},
                                             {128, 128, 256, 0, 0, true, 2, 1},
                                             {128, 256, 256, 60},
                                             {128, 64, 128, 0},
                                             {128, 128, 256, 0}}});

// 128-row m-tiles (wgmma m64n128k16: one decoded word feeds twice the rows, half the decode
// per flop). 256-column tiles first: the x tile is 256 of each k's 400 bytes, so 256 columns
// read 82 flops per byte of L2 instead of 50, and 128-deep k keeps four stages (H200, bf16,
// same call, 256x128 -> 128x256 tiles, us: 57344x8192 M = 256 555.6 -> 409.6, M = 1024
// 2204 -> 1593, M = 4096 8824 -> 6645; 36864x7168 M = 4096 4968 -> 3739; 4096x4096 M = 1024
// 87.3 -> 62.2; 64x256 and 256x256 tiles within 4 % of 128x256). They need work for every
// block: at fewer than 25 units per block slot they lost (6144x4096 M = 512, 23 units:
// 76.3 -> 80.4; 4096x14336 M = 128, 14 units: 53.0 -> 61.7) and at more they won (28672x4096
// M = 128, 27 units: 91.8 -> 88.9; 4096x14336 M = 256, 27 units: 81.7 -> 74.7).
// Then 128 columns, 256-deep k where K allows it. Measured against the 64-row plan (H200,
// bf16, same call, us; bands where the waves fill the slots):
//   M >= 512: 2688x4096 M = 4096 295.8 -> 228.1, 10304x2688 913.6 -> 644.4, 3712x2688
//   330.1 -> 243.5, 57344x8192 9238 -> 8919, 36864x7168 5218 -> 5029, 4096x4096 348.9 -> 337.4,
//   but 10240x8192 1723 -> 1810; M = 1024: every layer 2-29 % faster;
//   M = 128..256, layers of >= 50M weights: 57344x8192 M = 128 302.8 -> 288.0, M = 256
//   581.5 -> 553.7, 36864x7168 341.4 -> 323.7; on smaller layers mixed (4096x4096 M = 128
//   22.4 with mma.sync, 26.7 with these), so they keep the 64-row plan there.
constexpr auto kRows128 = std::array<TileChoice, 3>{
    {{128, 256, 256, 25, 0, true}, {256, 128, 256, 0, 0, true}, {128, 128, 256, 0, 0, true}}};
// Since partials are summed in fragment order (session 13) the line for M = 128..511 is the
// layer's 128x128x128 units per block slot and 128-row m-tile: at least 12 (H200, bf16,
// same call, default plan -> 128x128 tiles of 128 rows, us: 10304x2688, 12.9 units, M = 128
// 38.1 -> 32.8, M = 256 57.7 -> 50.8; 6144x4096, 11.6 units, M = 256 45.2 -> 46.2; 4096x4096,
// 7.8 units, M = 256 26.0 -> 35.2). Every layer of >= 50M weights has more than 12.
constexpr int kRows128MinUnits = 12;
bool prefer_rows128(std::int64_t m, std::int64_t n_padded, std::int64_t k_padded, int sm_count) {
  if (k_padded % 128 != 0) return false;  // no 128-row tile divides it
  const std::int64_t units = ((n_padded + 127) / 128) * (k_padded / 128);
  return m >= 512 || (m >= 128 && units >= std::int64_t{kRows128MinUnits} * sm_count);
}
constexpr std::int64_t kLargeLayer = 50'000'000;  // weights
// Layers below kLargeLayer at 64 < M <= 192 (two or three 64-row m-tiles) keep mma.sync: it
// measured faster on every one (H200, bf16, same call, M = 80 / 128, mma.sync vs wgmma:
// 4096x4096 22.3 / 22.4 vs 26.5 / 26.8 us, 2688x4096 21.1 / 22.2 vs 22.3 / 23.1, 3712x2688
// 19.5 / 20.5 vs 22.8 / 23.3, 10304x2688 37.8 / 38.5 vs 38.5 / 39.2) and at M = 192 on most.
bool sync_for_few_m_tiles(std::int64_t m, std::int64_t n_padded, std::int64_t k_padded) {
  return m > 64 && m <= 192 && n_padded * k_padded < kLargeLayer;
}

constexpr int kMaxStages = 4;

// How `units` work units over `tiles` output tiles of `k_tiles` units each are cut over at
// most `max_blocks` blocks. The plain stripe uses every block slot, but when each block gets
// only a few units most stripes straddle two tiles, and each tile a block touches costs it a
// publish, an arrival and perhaps a reduction, all on its critical path. A k split (blocks =
// tiles * s) gives every block one tile: s dividing k_tiles when that gives no block more
// units than the stripe, or at most two more when the stripe's are few. Where no divisor
// does, s <= kMaxSplitSharers ranges whose lengths differ by one, under the same bound, if the
// stripe would spread a tile over more than kMaxSplitSharers blocks or give each block at
// least 4 units. (H200, bf16, same call, stripe -> uneven split, us: 2688x3712, 29 k-tiles
// of 128, M = 1 12.2 -> 9.0, M = 32 17.6 -> 12.0, M = 64 16.9 -> 15.3, M = 128 21.2 -> 19.1;
// 2688x4096 M = 128 22.3 -> 19.9; but 10304x2688 M = 1, 3 units and 8 sharers a tile in the
// stripe, 12.9 -> 14.2: 486 blocks on 528 slots leave the SMs unevenly loaded.)
constexpr int kMaxSplitSharers = 8;  // the portable cluster size (cluster_split)
// Blocks a stripe of `shortest` or more units per block spreads one tile of `k_tiles` over,
// at most (a straddling block at either end).
std::int64_t stripe_sharers(std::int64_t k_tiles, std::int64_t shortest) {
  return (k_tiles + shortest - 1) / shortest + 1;
}
struct Split {
  int blocks;
  int sharers;  // > 0: a k split over this many blocks per tile; 0: the plain stripe
};
Split split_blocks(std::int64_t units, int tiles, int k_tiles, std::int64_t max_blocks) {
  const std::int64_t stripe = std::min(max_blocks, units);
  const std::int64_t stripe_units = (units + stripe - 1) / stripe;
  const int stripe_blocks = static_cast<int>(stripe);
  if (units % stripe == 0) {
    if (k_tiles % stripe_units == 0)
      return {stripe_blocks, static_cast<int>(k_tiles / stripe_units)};
    if (stripe_units % k_tiles == 0) return {stripe_blocks, 0};  // whole tiles
  }
  const std::int64_t most = stripe_units + (stripe_units <= 4 ? 2 : 0);
  const std::int64_t widest = std::min<std::int64_t>(k_tiles, max_blocks / tiles);
  for (std::int64_t s = widest; s >= 1; --s) {
    if (k_tiles % s) continue;
    if (k_tiles / s <= most) return {static_cast<int>(tiles * s), static_cast<int>(s)};
    break;  // smaller splits only give each block more units
  }
  const std::int64_t shortest = units / stripe;  // the stripe's blocks have this or one more
  if (stripe_sharers(k_tiles, shortest) <= kMaxSplitSharers && shortest < 4)
    return {stripe_blocks, 0};
  for (std::int64_t s = std::min<std::int64_t>(widest, kMaxSplitSharers); s >= 2; --s) {
    if ((k_tiles + s - 1) / s <= most) return {static_cast<int>(tiles * s), static_cast<int>(s)};
  }
  return {stripe_blocks, 0};
}

// Whole tiles in band order instead of stripes: where every block slot gets a tile and the
// waves of tiles keep 95 % of the slots busy. The stripes balance exactly, but their blocks
// work on tiles far apart, so A and the weights stream from DRAM once per tile (H200, bf16,
// stripes -> bands: 57344x8192 M = 4096 10541 -> 9130 us, 10240x8192 1964 -> 1694,
// 4096x4096 M = 1024 102.6 -> 91.2), while an idle part of the last wave costs its share
// (2688x4096 M = 4096, 93 % busy: 300.0 -> 319.1).
bool use_bands(const DenseOrder& order, std::int64_t tiles, std::int64_t slots) {
  if (order.mode == DenseOrder::stripes || slots < 2 || tiles < slots) return false;
  if (order.mode == DenseOrder::bands) return true;
  const std::int64_t waves = (tiles + slots - 1) / slots;
  return 20 * tiles >= 19 * waves * slots;
}

// The band height: the tiles in flight (`blocks` neighbours in band order) span band_m
// m-tiles and blocks / band_m n-tiles, reading 2 * rows bytes of A per k for each m-tile and
// 9/16 * tile_n of weights and scales for each n-tile; band_m balances the two.
int band_height(const GemmTile& tile, int blocks, int m_tiles) {
  const double rows = 16.0 * tile.m_blocks;
  const double best = std::sqrt(blocks * (tile.tile_n * 9.0 / 16.0) / (2.0 * rows));
  return std::clamp(static_cast<int>(std::lround(best)), 1, m_tiles);
}

// The 64-row wgmma kernel warp-specialized (GemmTile::specialized) where each block has
// enough units to repay the producer's start-up and the lost cluster reduction: at least 9,
// on 256-column tiles or with two or more m-tiles. Measured (H200, bf16, same call, us):
// M = 64 57344x8192 147.6 -> 135.9, 8192x28672 81.6 -> 74.5 (28 units, clusters of 4 lost),
// 10240x8192 42.7 -> 39.2 (9 units); M = 100 -7 to -10 % on the seven layers above 50M
// weights; 6144x4096 M = 256 45.1 -> 41.4. Lost where it is left out: 7168x18432 and
// 4096x14336 at M = 64 (256x128 tiles, one m-tile) +2-3 %, 6144x4096 M = 64 (4 units) 15.7 ->
// 22.4, 4096x4096 M = 256 (8 units) 26.0 -> 31.3.
bool specialize_rows64(const DensePlan& plan) {
  const GemmTile& t = plan.key.tile;
  if (!t.wgmma || t.m_blocks != 4 || t.resident_blocks) return false;
  return plan.stripe_units >= 9 && (t.tile_n == 256 || plan.m_tiles >= 2);
}

// Clusters of the sharers of each tile (sm_90): when every block owns one k-range of one tile
// and a tile has 2..8 sharers (the portable cluster size), and a whole partial fits in the
// block's shared memory. 1: the global-workspace reduction.
int cluster_split(const DensePlan& plan, int arch, int smem_bytes) {
  // The warp-specialized kernel's producer would have to join the cluster barrier.
  if (arch < 90 || gemm_warp_specialized(plan.key.tile)) return 1;
  const int sharers = plan.tile_sharers;
  const int partial_bytes = 16 * plan.key.tile.m_blocks * plan.key.tile.tile_n * 4;
  if (sharers < 2 || sharers > 8 || partial_bytes > smem_bytes) return 1;
  return sharers;
}

}  // namespace

std::optional<DenseTileOverride> parse_dense_tile_override(std::string_view value) {
  if (value.empty()) return std::nullopt;
  const std::string_view full = value;
  const auto bad = [&]() {
    fail(Status::invalid_argument,
         "MARLINRT_DENSE_TILE='{}': expected KxN[:B][/T][@R], with K (tile_k) and N "
         "(tile_n) each 64, 128 or 256, B (resident blocks per SM) 1 to 4, T (threads per "
         "block) 128 or 256 and R (rows per wgmma m-tile) 64 or 128, e.g. 128x256, "
         "128x128:1, 128x256:3/128 or 128x256@128",
         full);
  };
  const auto number = [&](std::string_view text) {
    int v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size()) bad();
    return v;
  };
  // Split "K x N [: B [/ T]] [@ R]" at its separators; a missing part stays empty.
  int rows = 0;
  if (const auto at = value.find('@'); at != std::string_view::npos) {
    rows = number(value.substr(at + 1));
    if (rows != 64 && rows != 128) bad();
    value = value.substr(0, at);
  }
  const auto x = value.find('x');
  if (x == std::string_view::npos) bad();
  const auto colon = value.find(':', x);
  const auto slash = colon == std::string_view::npos ? colon : value.find('/', colon);
  const auto part = [&](std::size_t from, std::size_t to) {
    return from == std::string_view::npos
               ? std::string_view{}
               : value.substr(from + 1, to == std::string_view::npos ? to : to - from - 1);
  };
  DenseTileOverride o;
  o.rows = rows;
  o.tile_k = number(value.substr(0, x));
  o.tile_n = number(part(x, colon));
  if (colon != std::string_view::npos) o.blocks_per_sm = number(part(colon, slash));
  if (slash != std::string_view::npos) o.threads = number(part(slash, std::string_view::npos));
  const auto tile_ok = [](int t) { return t == 64 || t == 128 || t == 256; };
  if (!tile_ok(o.tile_k) || !tile_ok(o.tile_n)) bad();
  if (colon != std::string_view::npos && (o.blocks_per_sm < 1 || o.blocks_per_sm > 4)) bad();
  if (slash != std::string_view::npos && o.threads != 128 && o.threads != 256) bad();
  return o;
}

void fit_clusters(DensePlan& plan, std::span<const int> resident) {
  const int c = plan.cluster_blocks;
  if (c <= 1) return;
  const bool fits = c < static_cast<int>(resident.size()) &&
                    std::int64_t{resident[c]} >= std::int64_t{plan.m_tiles} * plan.n_tiles;
  if (!fits) plan.cluster_blocks = 1;
}

DenseMma parse_dense_mma(std::string_view value) {
  if (value.empty() || value == "auto") return DenseMma::automatic;
  if (value == "sync") return DenseMma::sync;
  if (value == "wgmma") return DenseMma::wgmma;
  fail(Status::invalid_argument, "MARLINRT_DENSE_MMA='{}': expected auto, sync or wgmma", value);
}

void set_partition(const DensePlan& plan, kern::GemmParams& params) {
  params.m_tiles = plan.m_tiles;
  params.n_tiles = plan.n_tiles;
  params.k_tiles = plan.k_tiles;
  params.stripe_units = plan.stripe_units;
  params.stripe_extra = plan.stripe_extra;
  params.tile_sharers = plan.tile_sharers;
  params.tile_step = plan.tile_step;
  params.band_m = plan.band_m;
}

DenseOrder parse_dense_order(std::string_view value) {
  if (value.empty() || value == "auto") return {};
  if (value == "stripes") return {DenseOrder::stripes, 0};
  if (value == "bands") return {DenseOrder::bands, 0};
  constexpr std::string_view prefix = "bands:";
  int band_m = 0;
  if (value.substr(0, prefix.size()) == prefix) {
    const std::string_view number = value.substr(prefix.size());
    const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), band_m);
    if (ec == std::errc() && end == number.data() + number.size() && band_m >= 1 && band_m <= 4096)
      return {DenseOrder::bands, band_m};
  }
  fail(Status::invalid_argument,
       "MARLINRT_DENSE_ORDER='{}': expected auto, stripes, bands or bands:B with B (m-tiles per "
       "band) 1 to 4096",
       value);
}

int gemm_warp_cols(const GemmTile& t) { return t.wgmma ? t.tile_n / 8 : t.m_blocks == 1 ? 64 : 32; }

bool gemm_warp_specialized(const GemmTile& t) {
  return t.wgmma && (t.m_blocks == 8 || t.specialized);
}

bool gemm_ragged_n(const GemmTile& t) { return t.wgmma && t.m_blocks == 8 && t.tile_n == 256; }

int gemm_launch_threads(const GemmTile& t) {
  return t.threads + (gemm_warp_specialized(t) ? 128 : 0);
}

int gemm_blocks_per_sm(const GemmTile& t) {
  if (t.resident_blocks) return t.resident_blocks;
  return (t.m_blocks <= 2 ? 512 : 256) / t.threads;
}

bool gemm_tile_valid(const GemmTile& t) {
  if (t.wgmma) return wgmma_tile_shape(t);
  if (t.m_blocks < 1 || t.m_blocks > 4) return false;
  const int warps = t.threads / 32, warps_n = t.tile_n / gemm_warp_cols(t);
  if ((t.threads != 128 && t.threads != 256) || warps_n < 1 || warps % warps_n != 0) return false;
  return (t.tile_k / 16) % (warps / warps_n) == 0;
}

int gemm_smem_bytes(const GemmTile& t) {
  const int rows = 16 * t.m_blocks;
  const int warps = t.threads / 32, warps_n = t.tile_n / gemm_warp_cols(t);
  const int warps_k = warps / warps_n;
  const int stage = rows * t.tile_k * 2 + t.tile_k * t.tile_n / 2 + t.tile_k * t.tile_n / 16;
  const int warp_sums = (warps_k - 1) * rows * t.tile_n * 4;
  const int pipeline = t.stages * stage + std::max(warp_sums, t.threads * 16);
  // wgmma kernels keep room for a whole fp32 partial (the cluster reduction's).
  return t.wgmma ? std::max(pipeline, rows * t.tile_n * 4) : pipeline;
}

DensePlan plan_dense(std::int64_t m, std::int64_t n_padded, std::int64_t k_padded, DType act,
                     int arch, int sm_count, int smem_limit) {
  static const std::optional<DenseTileOverride> from_env = [] {
    const char* value = std::getenv("MARLINRT_DENSE_TILE");
    return parse_dense_tile_override(value != nullptr ? value : "");
  }();
  static const DenseMma mma = [] {
    const char* value = std::getenv("MARLINRT_DENSE_MMA");
    return parse_dense_mma(value != nullptr ? value : "");
  }();
  static const DenseOrder order = [] {
    const char* value = std::getenv("MARLINRT_DENSE_ORDER");
    return parse_dense_order(value != nullptr ? value : "");
  }();
  return plan_dense(m, n_padded, k_padded, act, arch, sm_count, smem_limit, from_env, mma, order);
}

DensePlan plan_dense(std::int64_t m, std::int64_t n_padded, std::int64_t k_padded, DType act,
                     int arch, int sm_count, int smem_limit,
                     const std::optional<DenseTileOverride>& tile_override, DenseMma mma,
                     DenseOrder order) {
  // The warpgroup MMA serves M > 48 on sm_90, by default where kLargeM's limits allow it,
  // with 128-row m-tiles where prefer_rows128() says so; MARLINRT_DENSE_MMA=wgmma forces it
  // wherever a wgmma tile divides the shape, =sync never. With MARLINRT_DENSE_TILE, 128-row
  // m-tiles for M > 64 come with "@128", or with a forced wgmma and 128-column tiles.
  const bool wgmma_forced = arch == 90 && mma == DenseMma::wgmma;
  if (tile_override && tile_override->rows == 128 && (arch != 90 || mma == DenseMma::sync)) {
    fail(Status::invalid_argument,
         "MARLINRT_DENSE_TILE asks for 128-row m-tiles (@128), which only the sm_90 wgmma "
         "kernel has (this device: sm_{}, MARLINRT_DENSE_MMA={})",
         arch, mma == DenseMma::sync ? "sync" : "auto/wgmma");
  }
  const bool rows128 =
      arch == 90 && mma != DenseMma::sync && m > 64 &&
      (tile_override ? tile_override->rows == 128 || (tile_override->rows == 0 && wgmma_forced &&
                                                      tile_override->tile_n == 128)
                     : prefer_rows128(m, n_padded, k_padded, sm_count));
  const int m_blocks =
      rows128 ? 8 : static_cast<int>(std::clamp<std::int64_t>((m + 15) / 16, 1, 4));
  const bool wgmma_ok =
      arch == 90 && mma != DenseMma::sync && m_blocks >= 4 &&
      (mma == DenseMma::wgmma || rows128 || !sync_for_few_m_tiles(m, n_padded, k_padded));
  // A view, not a copy: linear() plans every call.
  std::span<const TileChoice> choices = m_blocks == 1   ? std::span<const TileChoice>(kOneMBlock)
                                        : m_blocks == 2 ? std::span<const TileChoice>(kTwoMBlocks)
                                        : m_blocks == 8 ? std::span<const TileChoice>(kRows128)
                                                        : std::span<const TileChoice>(kLargeM);
  // Forced only where a wgmma tile divides the shape; elsewhere mma.sync serves. (With an
  // override, gemm_tile_valid below explains a tile the wgmma kernel cannot take.)
  const bool wgmma_only =
      wgmma_forced && wgmma_ok &&
      (rows128 || std::any_of(kLargeM.begin(), kLargeM.end(), [&](const TileChoice& c) {
         return c.wgmma && n_padded % c.tile_n == 0 && k_padded % c.tile_k == 0;
       }));
  TileChoice forced{};
  if (tile_override) {
    const int threads =
        tile_override->threads
            ? tile_override->threads
            : (tile_override->tile_k == 64 && tile_override->tile_n == 64 ? 128 : 256);
    forced = {static_cast<std::uint16_t>(tile_override->tile_k),
              static_cast<std::uint16_t>(tile_override->tile_n),
              static_cast<std::uint16_t>(threads),
              0,
              0,
              wgmma_only || rows128};
    GemmTile check{forced.tile_k,  forced.tile_n, static_cast<std::uint8_t>(m_blocks), 2,
                   forced.threads, forced.wgmma};
    // ":2" on the tile that has a two-block register budget asks for that budget too.
    if (tile_override->blocks_per_sm == 2 && wgmma_two_block_tile(check))
      forced.resident_blocks = check.resident_blocks = 2;
    if ((n_padded % forced.tile_n && !gemm_ragged_n(check)) || k_padded % forced.tile_k) {
      fail(Status::invalid_argument,
           "MARLINRT_DENSE_TILE asks for {}x{} tiles, which do not divide a padded {}x{} weight",
           forced.tile_k, forced.tile_n, n_padded, k_padded);
    }
    if (!gemm_tile_valid(check)) {
      if (forced.wgmma) {
        fail(Status::invalid_argument,
             "MARLINRT_DENSE_TILE asks for {}x{} tiles with {} threads, but the wgmma kernel "
             "(MARLINRT_DENSE_MMA=wgmma) takes 256 threads and 128- or 256-column tiles "
             "(128-row m-tiles for M > 64: @128, or 128-column tiles)",
             forced.tile_k, forced.tile_n, threads);
      }
      fail(Status::invalid_argument,
           "MARLINRT_DENSE_TILE asks for {}x{} tiles with {} threads, which the kernel cannot "
           "split over its warps at {} m-blocks ({} columns per warp)",
           forced.tile_k, forced.tile_n, threads, m_blocks, gemm_warp_cols(check));
    }
    choices = std::span<const TileChoice>(&forced, 1);
  }
  const std::int64_t m_tiles = (m + 16 * m_blocks - 1) / (16 * m_blocks);
  for (const auto& c : choices) {
    if (c.wgmma ? !wgmma_ok : wgmma_only) continue;
    if (c.max_m_tiles && m_tiles > c.max_m_tiles) continue;
    const GemmTile shape{
        c.tile_k, c.tile_n,         static_cast<std::uint8_t>(m_blocks), 2, c.threads,
        c.wgmma,  c.resident_blocks};
    if (!gemm_tile_valid(shape)) continue;
    if ((n_padded % c.tile_n && !gemm_ragged_n(shape)) || k_padded % c.tile_k) continue;
    const std::int64_t n_tiles = (n_padded + c.tile_n - 1) / c.tile_n;
    const int default_per_sm = gemm_blocks_per_sm(shape);
    const int wanted_per_sm = tile_override && tile_override->blocks_per_sm
                                  ? tile_override->blocks_per_sm
                                  : default_per_sm;
    // Over the whole call: with up to 4 m-blocks there is one m-tile; beyond, the choice
    // changes with the number of m-tiles (dense_keys_for_shape scans those counts).
    const std::int64_t units = m_tiles * n_tiles * (k_padded / c.tile_k);
    if (units < std::int64_t{c.min_units_per_block} * sm_count * default_per_sm) continue;
    // Resident blocks hide more latency than a deeper pipeline: give up stages while that
    // fits more of the wanted blocks, down to three (two when the override asks for blocks).
    const int min_stages = tile_override && tile_override->blocks_per_sm ? 2 : 3;
    const auto fitting = [&](int stages) {
      GemmTile t = shape;
      t.stages = static_cast<std::uint8_t>(stages);
      return smem_limit / gemm_smem_bytes(t);
    };
    for (int stages = kMaxStages; stages >= 2; --stages) {
      GemmTile tile = shape;
      tile.stages = static_cast<std::uint8_t>(stages);
      const int smem = gemm_smem_bytes(tile);
      if (smem > smem_limit) continue;
      const int fit = smem_limit / smem;
      if (fit < wanted_per_sm && stages > min_stages && fitting(stages - 1) > fit) continue;
      DensePlan plan;
      plan.key.kind = KernelKind::gemm;
      plan.key.activation_dtype = act;
      plan.key.tile = tile;
      plan.key.arch = arch;
      plan.m_tiles = static_cast<int>(m_tiles);
      plan.n_tiles = static_cast<int>(n_tiles);
      plan.k_tiles = static_cast<int>(k_padded / c.tile_k);
      if (units >= std::numeric_limits<int>::max()) {
        fail(Status::invalid_argument,
             "a {}x{}x{} GEMM has {} work units; the kernel indexes them with 32-bit integers "
             "(at most 2^31 - 1): split the call over fewer rows",
             m, n_padded, k_padded, units);
      }
      const int per_sm = std::min(fit, wanted_per_sm);
      const int tiles = plan.m_tiles * plan.n_tiles;
      const std::int64_t slots = std::int64_t{sm_count} * per_sm;
      if (use_bands(order, tiles, slots)) {
        plan.blocks = static_cast<int>(slots);
        plan.tile_step = plan.blocks;
        plan.band_m = order.band_m ? std::min(order.band_m, plan.m_tiles)
                                   : band_height(tile, plan.blocks, plan.m_tiles);
        plan.stripe_units = plan.k_tiles;  // unused by the kernel; one tile per block's turn
      } else {
        const Split split = split_blocks(units, tiles, plan.k_tiles, slots);
        plan.blocks = split.blocks;
        plan.band_m = plan.m_tiles;
        plan.tile_sharers = split.sharers;
        const std::int64_t cut = split.sharers ? plan.k_tiles : units;  // one period's units
        const int cut_blocks = split.sharers ? split.sharers : plan.blocks;
        plan.stripe_units = static_cast<int>(cut / cut_blocks);
        plan.stripe_extra = static_cast<int>(cut % cut_blocks);
      }
      // Blocks covering one tile: exact for a k split, else at most one more than the
      // shortest stripes need (straddling); whole tiles in band order have one.
      const std::int64_t sharers = plan.tile_sharers ? plan.tile_sharers
                                   : plan.tile_step > 1
                                       ? 1
                                       : stripe_sharers(plan.k_tiles, plan.stripe_units);
      // The next tile choice (a forced wgmma takes any number of sharers).
      if (c.max_sharers && sharers > c.max_sharers && !(c.wgmma && wgmma_forced)) break;
      plan.key.tile.specialized = specialize_rows64(plan);
      plan.cluster_blocks = cluster_split(plan, arch, smem);
      plan.smem_bytes = smem;
      plan.workspace_floats = 2LL * plan.blocks * 16 * m_blocks * c.tile_n;
      plan.lock_count = std::int64_t{plan.m_tiles} * plan.n_tiles;
      return plan;
    }
  }
  fail(Status::unsupported,
       "no GEMM tile configuration fits a padded {}x{} weight in {} bytes of shared memory",
       n_padded, k_padded, smem_limit);
}

int default_sm_count(int arch) {
  switch (arch) {
    case 80:
      return 108;  // A100
    case 86:
      return 84;  // A40 / RTX A6000
    case 87:
      return 16;  // Orin
    case 89:
      return 142;  // L40S
    case 90:
      return 132;  // H100 SXM
    default:
      return 132;
  }
}

static int default_smem_limit(int arch) {
  switch (arch) {
    case 80:
      return 163 * 1024;
    case 90:
      return 227 * 1024;
    default:
      return 99 * 1024;
  }
}

std::vector<KernelKey> dense_keys_for_shape(std::int64_t n, std::int64_t k, DType act, int arch,
                                            int sm_count, std::int64_t max_m) {
  std::vector<KernelKey> keys;
  const std::int64_t last = std::max<std::int64_t>(max_m, 1);
  const auto add = [&](std::int64_t m) {
    const auto plan =
        plan_dense(m, padded_n(n), padded_k(k), act, arch, sm_count, default_smem_limit(arch));
    if (std::find(keys.begin(), keys.end(), plan.key) == keys.end()) keys.push_back(plan.key);
  };
  // Up to 4 m-blocks there is one m-tile: one m per m-block count covers it. Beyond, the
  // choice depends on the number of 64-row m-tiles: every count up to 4096 of them (a few
  // ms of planning), then doubling, and max_m itself.
  for (std::int64_t m : {1, 17, 33})
    if (m <= last) add(m);
  for (std::int64_t t = 1; 64 * (t - 1) < last; t = t < 4096 ? t + 1 : 2 * t)
    add(std::min(64 * t, last));
  return keys;
}

std::vector<KernelKey> prepare_keys(int arch) {
  KernelKey w, s;
  w.kind = KernelKind::repack_weights;
  s.kind = KernelKind::repack_scales;
  w.arch = s.arch = arch;
  return {w, s};
}

}  // namespace marlinrt::detail
