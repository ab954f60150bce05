// Dense dispatch on the host: every plan is a valid kernel that fits its GPU, and the
// GEMM template really compiles with NVRTC for every supported architecture.
#include <array>
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <tuple>

#include "cache/cache_config.hpp"
#include "cache/disk_cache.hpp"
#include "marlinrt/error.hpp"
#include "runtime/dense_dispatch.hpp"
#include "runtime/kernel_provider.hpp"
#include "runtime/nvfp4_layout.hpp"

using namespace marlinrt;
using namespace marlinrt::detail;

TEST_CASE("dense plans are valid, fit shared memory and cover the work", "[dispatch]") {
  const std::int64_t shapes[][2] = {{6144, 4096},  {28672, 4096}, {4096, 14336}, {1856, 672},
                                    {2688, 10304}, {72, 48},      {10304, 2688}, {57344, 8192}};
  for (int arch : {80, 86, 89, 90}) {
    const int smem_limit = arch == 90 ? 232448 : arch == 80 ? 166912 : 101376;
    for (auto [n, k] : shapes) {
      for (std::int64_t m : {1, 7, 16, 17, 33, 64, 100, 1000, 16384}) {
        INFO("arch " << arch << " n " << n << " k " << k << " m " << m);
        const auto plan =
            plan_dense(m, padded_n(n), padded_k(k), DType::bf16, arch, 132, smem_limit);
        REQUIRE_NOTHROW(plan.key.validate());
        CHECK(plan.key.arch == arch);
        // The tiles cover N exactly, or (the specialized kernel) cut the last one short.
        const std::int64_t tile_n = plan.key.tile.tile_n;
        CHECK(plan.n_tiles == (padded_n(n) + tile_n - 1) / tile_n);
        CHECK((padded_n(n) % tile_n == 0 || gemm_ragged_n(plan.key.tile)));
        CHECK(padded_k(k) % plan.key.tile.tile_k == 0);
        CHECK(plan.smem_bytes == gemm_smem_bytes(plan.key.tile));
        CHECK(plan.smem_bytes <= smem_limit);
        CHECK(plan.m_tiles * 16 * plan.key.tile.m_blocks >= m);
        const std::int64_t units = std::int64_t{plan.m_tiles} * plan.n_tiles * plan.k_tiles;
        CHECK(plan.blocks >= 1);
        CHECK(plan.blocks <= units);
        CHECK(gemm_tile_valid(plan.key.tile));
        // At most as many blocks as the kernel's register budget lets reside, and as fit.
        CHECK(plan.blocks <= gemm_blocks_per_sm(plan.key.tile) * 132);
        CHECK(plan.blocks <= (smem_limit / plan.smem_bytes) * 132);
      }
    }
  }
}

TEST_CASE("small layers split k evenly so that each block owns one tile", "[dispatch]") {
  // 2688x4096 and 4096x4096 at M = 1: a few units per block, where straddling two tiles
  // doubled a block's publish-and-reduce path.
  for (auto [n, k] : {std::pair<std::int64_t, std::int64_t>{2688, 4096}, {4096, 4096}}) {
    const auto plan = plan_dense(1, n, k, DType::bf16, 90, 132, 232448, std::nullopt);
    INFO("n " << n << " k " << k << " blocks " << plan.blocks << " units " << plan.stripe_units);
    CHECK(plan.stripe_extra == 0);
    CHECK(plan.k_tiles % plan.stripe_units == 0);
    CHECK(plan.blocks == plan.n_tiles * (plan.k_tiles / plan.stripe_units));
    CHECK(plan.blocks >= 64);
  }
  // 2688x3712: 29 k-tiles of 128 (prime) have no even split; they are cut into 8 ranges of
  // 3 or 4, each block still owning one tile, and the 8 sharers form a cluster on sm_90.
  for (std::int64_t m : {1, 16, 32}) {
    const auto prime = plan_dense(m, 2688, 3712, DType::bf16, 90, 132, 232448, std::nullopt);
    INFO("m " << m << " blocks " << prime.blocks << " units " << prime.stripe_units << "+"
              << prime.stripe_extra);
    CHECK(prime.k_tiles == 29);
    CHECK(prime.tile_sharers == 8);
    CHECK(prime.blocks == prime.n_tiles * 8);
    CHECK(prime.stripe_units == 3);
    CHECK(prime.stripe_extra == 5);  // 5 ranges of 4, 3 of 3
    CHECK(prime.cluster_blocks == 8);
  }
  // 10304x2688 at M = 1 keeps its stripe (3 or 4 units a block, 8 sharers a tile): the
  // uneven cut into 6 measured slower there.
  const auto striped =
      plan_dense(1, padded_n(10304), padded_k(2688), DType::bf16, 90, 132, 232448, std::nullopt);
  CHECK(striped.tile_sharers == 0);
  CHECK(striped.blocks == 4 * 132);
  // Without clusters (sm_80) the same cut reduces through the workspace.
  const auto ampere = plan_dense(1, 2688, 3712, DType::bf16, 80, 108, 166912, std::nullopt);
  CHECK(ampere.tile_sharers >= 2);
  CHECK(ampere.tile_sharers <= 8);
  CHECK(ampere.cluster_blocks == 1);
  // N is padded to 128 columns so that 128-column tiles serve every layer (10304 = 80.5 x 128).
  CHECK(padded_n(10304) == 10368);
  CHECK(padded_n(1856) == 1920);
  CHECK(padded_k(672) == 704);
  CHECK(plan_dense(1, padded_n(10304), padded_k(2688), DType::bf16, 90, 132, 232448, std::nullopt)
            .key.tile.tile_n == 128);
  // A large layer keeps every block slot busy: its stripes are long, straddling costs little.
  const auto big = plan_dense(1, 57344, 8192, DType::bf16, 90, 132, 232448, std::nullopt);
  CHECK(big.blocks == 2 * 132);
}

TEST_CASE("cluster plans are kept only when all their clusters can be resident", "[dispatch]") {
  // 4096x4096 at M = 1 on sm_90: 32 tiles of 16 k-tiles, split 8 ways into clusters of 8.
  const auto plan = plan_dense(1, 4096, 4096, DType::bf16, 90, 132, 232448, std::nullopt);
  REQUIRE(plan.cluster_blocks == 8);
  const int tiles = plan.m_tiles * plan.n_tiles;
  // The plan after fit_clusters when `fitting` clusters of each size can be resident.
  const auto fitted = [&](int fitting_8, int fitting_4) {
    std::array<int, 9> resident{};
    resident[8] = fitting_8;
    resident[4] = fitting_4;
    DensePlan p = plan;
    fit_clusters(p, resident);
    CHECK(p.blocks == plan.blocks);  // the stripes never change
    CHECK(p.stripe_units == plan.stripe_units);
    return p.cluster_blocks;
  };
  CHECK(fitted(tiles, 0) == 8);
  CHECK(fitted(tiles - 1, tiles) == 1);  // not all fit: the workspace path
}

TEST_CASE("prebuild keys of a shape are exactly the plans' keys", "[dispatch]") {
  const auto keys = dense_keys_for_shape(6144, 4096, DType::f16, 90, 132, 4096);
  CHECK(keys.size() >= 2);  // small-M and large-M kernels
  for (std::int64_t m : {1, 5, 16, 20, 32, 40, 64, 4096}) {
    const auto plan = plan_dense(m, 6144, 4096, DType::f16, 90, 132, 232448);
    CHECK(std::find(keys.begin(), keys.end(), plan.key) != keys.end());
  }
  CHECK(dense_keys_for_shape(6144, 4096, DType::f16, 90, 132, 1).size() == 1);
  // With 4 m-blocks the mma.sync tile depends on the number of m-tiles (128x64 for few,
  // 128x256 for many): prebuild must produce both.
  const auto big = dense_keys_for_shape(10240, 8192, DType::bf16, 80, 108, 16384);
  const auto small_m = plan_dense(64, 10240, 8192, DType::bf16, 80, 108, 166912);
  const auto large_m = plan_dense(16384, 10240, 8192, DType::bf16, 80, 108, 166912);
  CHECK(small_m.key.tile.tile_n != large_m.key.tile.tile_n);
  const auto hopper = dense_keys_for_shape(10240, 8192, DType::bf16, 90, 132, 16384);
  for (std::int64_t m : {49, 64, 65, 256, 1000, 4096, 9999, 16384}) {
    INFO("m " << m);
    const auto plan = plan_dense(m, 10240, 8192, DType::bf16, 80, 108, 166912);
    CHECK(std::find(big.begin(), big.end(), plan.key) != big.end());
    const auto on_90 = plan_dense(m, 10240, 8192, DType::bf16, 90, 132, 232448);
    CHECK(std::find(hopper.begin(), hopper.end(), on_90.key) != hopper.end());
  }
}

TEST_CASE("sm_90 serves M > 48 with the warpgroup MMA where its tiles have few sharers",
          "[dispatch]") {
  const auto plan = [](std::int64_t m, std::int64_t n, std::int64_t k, int arch, DenseMma mma) {
    return plan_dense(m, n, k, DType::bf16, arch, 132, 232448, std::nullopt, mma);
  };
  // The default: wgmma on big enough layers, 256x256 tiles with 64-row m-tiles up to M = 127,
  // then 128x256 tiles with 128-row m-tiles, in four stages.
  for (std::int64_t m : {49, 64, 127, 128, 256, 4096}) {
    INFO("m " << m);
    const auto p = plan(m, 57344, 8192, 90, DenseMma::automatic);
    CHECK(p.key.tile.wgmma);
    CHECK(p.key.tile.m_blocks == (m >= 128 ? 8 : 4));
    CHECK(p.key.tile.tile_k == (m >= 128 ? 128 : 256));
    CHECK(p.key.tile.tile_n == 256);
    CHECK(p.key.tile.stages == (m >= 128 ? 4 : 3));
    CHECK(gemm_smem_bytes(p.key.tile) <= 232448);
  }
  // 128x256 tiles with 128 rows need 25 units per block slot; below, 256x128 tiles.
  const auto rows128_tile = [&](std::int64_t m, std::int64_t n, std::int64_t k) {
    const auto t = plan(m, n, k, 90, DenseMma::automatic).key.tile;
    CHECK(t.m_blocks == 8);
    return std::pair<int, int>{t.tile_k, t.tile_n};
  };
  CHECK(rows128_tile(512, 6144, 4096) == std::pair{256, 128});   // 23 units per slot
  CHECK(rows128_tile(1024, 6144, 4096) == std::pair{128, 256});  // 46
  CHECK(rows128_tile(128, 4096, 14336) == std::pair{256, 128});  // 14
  CHECK(rows128_tile(256, 4096, 14336) == std::pair{128, 256});  // 27
  // Padded N no multiple of 256: the last 256-column tile is cut short (85 units per slot),
  // unless there are too few units (M = 1024: 21).
  CHECK(rows128_tile(4096, 2688, 4096) == std::pair{128, 256});
  CHECK(rows128_tile(1024, 2688, 4096) == std::pair{256, 128});
  CHECK(gemm_ragged_n(plan(4096, 2688, 4096, 90, DenseMma::automatic).key.tile));
  CHECK_FALSE(gemm_ragged_n(plan(1024, 2688, 4096, 90, DenseMma::automatic).key.tile));
  // Layers with fewer than 12 128x128 tiles per SM take 128-row m-tiles from M = 512, the
  // others from M = 128; K must be a multiple of 128.
  CHECK(plan(256, 4096, 4096, 90, DenseMma::automatic).key.tile.m_blocks == 4);
  CHECK(plan(256, 6144, 4096, 90, DenseMma::automatic).key.tile.m_blocks == 4);  // 11.6
  for (std::int64_t m : {128, 256}) {
    INFO("m " << m);
    CHECK(plan(m, 10368, 2688, 90, DenseMma::automatic).key.tile.m_blocks == 8);  // 12.9
    CHECK(plan(m, 10368, 2688, 90, DenseMma::automatic).key.tile.tile_n == 128);
  }
  CHECK(plan(100, 10368, 2688, 90, DenseMma::automatic).key.tile.m_blocks == 4);
  CHECK(plan(512, 4096, 4096, 90, DenseMma::automatic).key.tile.m_blocks == 8);
  const auto k2688 = plan(4096, 10368, 2688, 90, DenseMma::automatic).key.tile;
  CHECK(k2688.m_blocks == 8);
  CHECK(k2688.tile_k == 128);
  CHECK(plan(4096, 1024, 704, 90, DenseMma::automatic).key.tile.m_blocks == 4);
  CHECK(plan(4096, 57344, 8192, 90, DenseMma::sync).key.tile.m_blocks == 4);
  // Two or three 64-row m-tiles on a layer below 50M weights: mma.sync unless forced.
  for (std::int64_t m : {65, 128, 192}) {
    INFO("m " << m);
    CHECK_FALSE(plan(m, 4096, 4096, 90, DenseMma::automatic).key.tile.wgmma);
    CHECK(plan(m, 4096, 4096, 90, DenseMma::wgmma).key.tile.wgmma);
    CHECK(plan(m, 10240, 8192, 90, DenseMma::automatic).key.tile.wgmma);
  }
  CHECK(plan(193, 4096, 4096, 90, DenseMma::automatic).key.tile.wgmma);
  // The 128-row kernel is warp-specialized: a producer warpgroup more, and no clusters (its
  // producer does not take part in the cluster barrier).
  int specialized = 0;
  for (std::int64_t m : {128, 512, 4096})
    for (auto [n, k] : {std::pair<std::int64_t, std::int64_t>{57344, 8192},
                        {4096, 14336},
                        {4096, 4096},
                        {2688, 4096}}) {
      INFO("m " << m << " n " << n << " k " << k);
      const auto p = plan(m, n, k, 90, DenseMma::automatic);
      CHECK(gemm_warp_specialized(p.key.tile) ==
            (p.key.tile.m_blocks == 8 || p.key.tile.specialized));
      if (!gemm_warp_specialized(p.key.tile)) {
        CHECK(gemm_launch_threads(p.key.tile) == p.key.tile.threads);
        continue;
      }
      ++specialized;
      CHECK(gemm_launch_threads(p.key.tile) == p.key.tile.threads + 128);
      CHECK(p.cluster_blocks == 1);
    }
  CHECK(specialized >= 8);
  // The 64-row kernel is specialized where a block has 9+ units of 256-column tiles (or
  // several m-tiles), and never loses its cluster reduction otherwise.
  for (auto [m, n, k, expected] : {std::tuple{64, 57344, 8192, true},
                                   {64, 8192, 28672, true},
                                   {64, 10240, 8192, true},
                                   {100, 7168, 18432, true},
                                   {64, 7168, 18432, false},    // 256x128 tiles, one m-tile
                                   {64, 6144, 4096, false},     // 4 units per block
                                   {256, 4096, 4096, false},    // 8 units per block
                                   {64, 3712, 2688, false}}) {  // the two-block kernel
    INFO("m " << m << " n " << n << " k " << k);
    const auto p = plan(m, n, k, 90, DenseMma::automatic);
    CHECK(p.key.tile.wgmma);
    CHECK(p.key.tile.m_blocks == 4);
    CHECK(p.key.tile.specialized == expected);
    CHECK(gemm_warp_specialized(p.key.tile) == expected);
    if (expected) CHECK(p.cluster_blocks == 1);
    CHECK_FALSE(plan(m, n, k, 80, DenseMma::automatic).key.tile.specialized);
  }
  CHECK_FALSE(plan(48, 57344, 8192, 90, DenseMma::automatic).key.tile.wgmma);    // 3 m-blocks
  CHECK_FALSE(plan(4096, 57344, 8192, 80, DenseMma::automatic).key.tile.wgmma);  // sm_90 only
  CHECK_FALSE(plan(4096, 57344, 8192, 90, DenseMma::sync).key.tile.wgmma);
  // 4096x4096 at M = 64 has 16 tiles of 256 columns, 8 sharers each: 128-column tiles (4
  // sharers) instead; at M = 256 the 64 tiles of 256 columns have 2.
  const auto small = plan(64, 4096, 4096, 90, DenseMma::automatic).key.tile;
  CHECK(small.wgmma);
  CHECK(small.tile_n == 128);
  CHECK(plan(256, 4096, 4096, 90, DenseMma::automatic).key.tile.tile_n == 256);
  // 3712x2688 and 2688x3712 at M = 64: 128-column tiles leave more than 5 sharers each, so
  // one m-tile takes the two-block wgmma kernel; two m-tiles (M = 128) do not.
  for (auto [n, k] : {std::pair{3712, 2688}, std::pair{2688, 3712}}) {
    const auto one = plan(64, n, k, 90, DenseMma::automatic).key.tile;
    CHECK(one.wgmma);
    CHECK(one.resident_blocks == 2);
    CHECK(gemm_blocks_per_sm(one) == 2);
    CHECK(plan(128, n, k, 90, DenseMma::automatic).key.tile.resident_blocks == 0);
    CHECK(plan(64, n, k, 80, DenseMma::automatic).key.tile.resident_blocks == 0);
  }
  CHECK(plan(64, 3712, 2688, 90, DenseMma::wgmma).key.tile.wgmma);
  // K = 672 pads to 704, which no wgmma tile divides: mma.sync serves it, even when forced.
  CHECK_FALSE(plan(64, 1024, 704, 90, DenseMma::wgmma).key.tile.wgmma);
  // N = 2688 is no multiple of 256: 128-column tiles serve its 64-row m-tiles.
  for (DenseMma mma : {DenseMma::automatic, DenseMma::wgmma}) {
    const auto p = plan(256, 2688, 4096, 90, mma);
    CHECK(p.key.tile.wgmma);
    CHECK(p.key.tile.tile_n == 128);
    CHECK(p.key.tile.m_blocks == 4);
  }
  // With a tile override, 128-row m-tiles only when forced with 128-column tiles and M > 64.
  const auto rows128 = plan_dense(4096, 8192, 8192, DType::bf16, 90, 132, 232448,
                                  DenseTileOverride{128, 128, 0}, DenseMma::wgmma);
  CHECK(rows128.key.tile.wgmma);
  CHECK(rows128.key.tile.m_blocks == 8);
  CHECK(rows128.m_tiles == 32);
  CHECK(gemm_smem_bytes(rows128.key.tile) <= 232448);
  CHECK(plan_dense(64, 8192, 8192, DType::bf16, 90, 132, 232448, DenseTileOverride{128, 256, 0},
                   DenseMma::wgmma)
            .key.tile.m_blocks == 4);
  CHECK(plan_dense(64, 8192, 8192, DType::bf16, 90, 132, 232448, DenseTileOverride{128, 128, 0},
                   DenseMma::wgmma)
            .key.tile.m_blocks == 4);  // 64 rows: the 64-row kernel with 128-column tiles
  CHECK_THROWS_WITH(plan_dense(64, 8192, 8192, DType::bf16, 90, 132, 232448,
                               DenseTileOverride{128, 64, 0}, DenseMma::wgmma),
                    Catch::Contains("128- or 256-column tiles"));
  // An override without MARLINRT_DENSE_MMA=wgmma keeps mma.sync.
  CHECK_FALSE(plan_dense(4096, 8192, 8192, DType::bf16, 90, 132, 232448,
                         DenseTileOverride{256, 256, 0}, DenseMma::automatic)
                  .key.tile.wgmma);
  CHECK(parse_dense_mma("") == DenseMma::automatic);
  CHECK(parse_dense_mma("sync") == DenseMma::sync);
  CHECK(parse_dense_mma("wgmma") == DenseMma::wgmma);
  CHECK_THROWS_WITH(parse_dense_mma("tcgen05"), Catch::Contains("MARLINRT_DENSE_MMA") &&
                                                    Catch::Contains("auto, sync or wgmma"));
}

TEST_CASE("the GEMM and repack templates compile with NVRTC for sm_80..sm_90",
          "[dispatch][nvrtc]") {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("marlinrt-dispatch-test-" + std::to_string(::getpid()));
  CacheConfig config;
  config.dir = dir;
  DiskCache cache(config);
  KernelProvider provider(cache, JitOptions{});
  for (int arch : {80, 86, 89, 90}) {
    std::vector<KernelKey> keys = prepare_keys(arch);
    keys.push_back(plan_dense(1, 4096, 4096, DType::bf16, arch, 132, 101376).key);
    if (arch == 80 || arch == 90) {
      keys.push_back(plan_dense(4096, 4096, 4096, DType::f16, arch, 132, 101376).key);
    }
    if (arch == 90) {  // the sm_90a warpgroup-MMA kernels, 64- and 128-row m-tiles
      for (std::int64_t m : {64, 4096}) {
        const auto key =
            plan_dense(m, 4096, 4096, DType::bf16, arch, 132, 232448, std::nullopt, DenseMma::wgmma)
                .key;
        REQUIRE(key.tile.wgmma);
        keys.push_back(key);
      }
    }
    for (const auto& key : keys) {
      const auto t0 = std::chrono::steady_clock::now();
      const std::string cubin = provider.get_cubin(key);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      WARN(key.to_string() << ": cold NVRTC compile " << s << " s, " << cubin.size() << " bytes");
      REQUIRE(cubin.size() > 1000);
      CHECK(cubin.compare(0, 4,
                          "\x7f"
                          "ELF") == 0);
    }
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("MARLINRT_DENSE_TILE overrides the tile choice, and bad values explain the form",
          "[dispatch]") {
  CHECK_FALSE(parse_dense_tile_override("").has_value());
  const auto o = parse_dense_tile_override("128x256");
  REQUIRE(o.has_value());
  CHECK(o->tile_k == 128);
  CHECK(o->tile_n == 256);
  CHECK(o->blocks_per_sm == 0);
  CHECK(parse_dense_tile_override("64x128:1")->blocks_per_sm == 1);
  const auto with_threads = parse_dense_tile_override("128x256:3/128");
  CHECK(with_threads->blocks_per_sm == 3);
  CHECK(with_threads->threads == 128);
  CHECK(parse_dense_tile_override("128x256:2")->threads == 0);
  CHECK(parse_dense_tile_override("128x256")->rows == 0);
  CHECK(parse_dense_tile_override("128x256@128")->rows == 128);
  const auto every_part = parse_dense_tile_override("64x256:1/256@64");
  CHECK(every_part->tile_k == 64);
  CHECK(every_part->blocks_per_sm == 1);
  CHECK(every_part->threads == 256);
  CHECK(every_part->rows == 64);
  for (const char* bad :
       {"128", "128x", "x128", "96x128", "128x128:5", "128x128:0", "128x128:", "128x128x1",
        "128 x128", "abc", "128x256:2/", "128x256:2/96", "128x256/128", "128x256:2/128/1",
        "128x256@", "128x256@96", "128x256@128@128", "@128", "128x256@128:1"}) {
    INFO(bad);
    try {
      parse_dense_tile_override(bad);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.status() == Status::invalid_argument);
      CHECK_THAT(e.what(), Catch::Contains("MARLINRT_DENSE_TILE") && Catch::Contains("KxN"));
    }
  }
  // "@128": 128-row m-tiles of the wgmma kernel, with any wgmma tile; only on sm_90.
  const auto rows128 = plan_dense(4096, 8192, 8192, DType::bf16, 90, 132, 232448,
                                  DenseTileOverride{128, 256, 0, 0, 128});
  CHECK(rows128.key.tile.m_blocks == 8);
  CHECK(rows128.key.tile.tile_n == 256);
  CHECK(rows128.key.tile.wgmma);
  CHECK(rows128.key.tile.stages == 4);
  CHECK(plan_dense(4096, 8192, 8192, DType::bf16, 90, 132, 232448,
                   DenseTileOverride{128, 128, 0, 0, 64}, DenseMma::wgmma)
            .key.tile.m_blocks == 4);
  CHECK_THROWS_WITH(plan_dense(4096, 8192, 8192, DType::bf16, 80, 108, 166912,
                               DenseTileOverride{128, 256, 0, 0, 128}),
                    Catch::Contains("@128") && Catch::Contains("sm_80"));
  // The override replaces the choice, keeps the m-blocks and honours blocks per SM.
  const auto plan =
      plan_dense(1, 4096, 4096, DType::bf16, 90, 132, 232448, DenseTileOverride{64, 128, 1});
  CHECK(plan.key.tile.tile_k == 64);
  CHECK(plan.key.tile.tile_n == 128);
  CHECK(plan.key.tile.m_blocks == 1);
  CHECK(plan.blocks <= 132);
  CHECK_THROWS_WITH(
      plan_dense(1, 2688, 4096, DType::bf16, 90, 132, 232448, DenseTileOverride{128, 256, 0}),
      Catch::Contains("MARLINRT_DENSE_TILE") && Catch::Contains("do not divide"));
  // 128 threads: four warps of 64 columns own a 256-column tile at M <= 16; the blocks per SM
  // asked for decide the stages (three of 22.5 KB fit three blocks in 227 KB, not four).
  const auto narrow =
      plan_dense(1, 8192, 8192, DType::bf16, 90, 132, 232448, DenseTileOverride{128, 256, 4, 128});
  CHECK(narrow.key.tile.threads == 128);
  CHECK(narrow.key.tile.stages == 2);
  CHECK(narrow.blocks <= 4 * 132);
  const auto three =
      plan_dense(1, 8192, 8192, DType::bf16, 90, 132, 232448, DenseTileOverride{128, 256, 3, 128});
  CHECK(three.key.tile.stages == 3);
  // At 4 m-blocks a warp owns 32 columns: four warps cannot cover 256 of them.
  CHECK_THROWS_WITH(
      plan_dense(64, 8192, 8192, DType::bf16, 90, 132, 232448, DenseTileOverride{128, 256, 0, 128}),
      Catch::Contains("MARLINRT_DENSE_TILE") && Catch::Contains("cannot split"));
}

TEST_CASE("large M owns whole tiles in band order where the waves keep the slots busy",
          "[dispatch]") {
  const auto plan = [](std::int64_t m, std::int64_t n, std::int64_t k, const char* order) {
    return plan_dense(m, n, k, DType::bf16, 90, 132, 232448, std::nullopt, DenseMma::automatic,
                      parse_dense_order(order));
  };
  // Many waves of tiles: whole tiles, one block per slot, bands lower than the m extent.
  for (const char* order : {"auto", "bands"}) {
    const DensePlan big = plan(4096, 57344, 8192, order);
    INFO("order " << order << " blocks " << big.blocks << " band " << big.band_m);
    CHECK(big.tile_step == big.blocks);
    CHECK(big.stripe_extra == 0);
    CHECK(big.cluster_blocks == 1);
    CHECK(big.band_m >= 1);
    CHECK(big.band_m < big.m_tiles);
  }
  CHECK(plan(4096, 57344, 8192, "bands:5").band_m == 5);
  CHECK(plan(4096, 57344, 8192, "bands:4096").band_m == plan(4096, 57344, 8192, "").m_tiles);
  // Stripes on request, for small M (fewer tiles than slots: they split k instead), and
  // where the last wave would leave too many slots idle.
  const DensePlan striped = plan(4096, 57344, 8192, "stripes");
  CHECK(striped.tile_step == 1);
  CHECK(striped.band_m == striped.m_tiles);
  for (const char* order : {"auto", "bands"}) {
    const DensePlan one = plan(1, 4096, 4096, order);
    CHECK(one.tile_step == 1);
    CHECK(one.band_m == one.m_tiles);
  }
  const DensePlan tail = plan(4096, 2688, 4096, "auto");
  const std::int64_t tiles = std::int64_t{tail.m_tiles} * tail.n_tiles;
  const std::int64_t waves = (tiles + tail.blocks - 1) / tail.blocks;
  INFO("tiles " << tiles << " blocks " << tail.blocks);
  CHECK((tail.tile_step == 1) == (20 * tiles < 19 * waves * tail.blocks));
  CHECK(plan(4096, 2688, 4096, "bands").tile_step > 1);
}

TEST_CASE("MARLINRT_DENSE_ORDER accepts auto, stripes, bands and bands:B only", "[dispatch]") {
  CHECK(parse_dense_order("").mode == DenseOrder::automatic);
  CHECK(parse_dense_order("auto").mode == DenseOrder::automatic);
  CHECK(parse_dense_order("stripes").mode == DenseOrder::stripes);
  CHECK(parse_dense_order("bands").mode == DenseOrder::bands);
  CHECK(parse_dense_order("bands").band_m == 0);
  CHECK(parse_dense_order("bands:12").band_m == 12);
  for (const char* bad :
       {"band", "bands:", "bands:0", "bands:x", "bands:12x", "bands:5000", "Stripes", "on"}) {
    INFO(bad);
    try {
      (void)parse_dense_order(bad);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.status() == Status::invalid_argument);
      CHECK_THAT(e.what(), Catch::Contains("MARLINRT_DENSE_ORDER") && Catch::Contains("bands:B") &&
                               Catch::Contains(bad));
    }
  }
}
