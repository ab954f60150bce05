#include <catch2/catch.hpp>

#include <set>

#include "marlinrt/error.hpp"
#include "marlinrt/kernel_key.hpp"

using namespace marlinrt;

namespace {
KernelKey dense_key() {
  KernelKey k;
  k.activation_dtype = DType::bf16;
  k.tile = {128, 128, 4, 4, 256};
  k.arch = 90;
  return k;
}
}  // namespace

TEST_CASE("kernel key text round-trips", "[key]") {
  KernelKey k = dense_key();
  CHECK(k.to_string() == "gemm/e2m1/g16/bf16/dense/t128x128/m4/s4/w256/sm_90");
  CHECK(KernelKey::parse(k.to_string()) == k);

  KernelKey moe = k;
  moe.moe = true;
  moe.activation = Activation::silu;
  moe.gated = true;
  moe.topk_weight = true;
  moe.activation_dtype = DType::f16;
  moe.arch = 80;
  CHECK(moe.to_string() == "gemm/e2m1/g16/f16/moe-silu-gated-topkw/t128x128/m4/s4/w256/sm_80");
  CHECK(KernelKey::parse(moe.to_string()) == moe);

  KernelKey wgmma = k;
  wgmma.tile.tile_n = 256;
  wgmma.tile.wgmma = true;
  CHECK(wgmma.to_string() == "gemm/e2m1/g16/bf16/dense/t128x256/m4/s4/w256/wgmma/sm_90");
  CHECK(KernelKey::parse(wgmma.to_string()) == wgmma);
  CHECK(compile_target(wgmma) == "sm_90a");

  KernelKey two_blocks = k;
  two_blocks.tile.wgmma = true;
  two_blocks.tile.resident_blocks = 2;
  CHECK(two_blocks.to_string() == "gemm/e2m1/g16/bf16/dense/t128x128/m4/s4/w256/b2/wgmma/sm_90");
  CHECK(KernelKey::parse(two_blocks.to_string()) == two_blocks);

  KernelKey specialized = k;
  specialized.tile.tile_n = 256;
  specialized.tile.wgmma = true;
  specialized.tile.specialized = true;
  CHECK(specialized.to_string() == "gemm/e2m1/g16/bf16/dense/t128x256/m4/s4/w256/ws/wgmma/sm_90");
  CHECK(KernelKey::parse(specialized.to_string()) == specialized);
  CHECK(compile_target(k) == "sm_90");

  KernelKey repack;
  repack.kind = KernelKind::repack_weights;
  repack.arch = 86;
  CHECK(repack.to_string() == "repack_weights/sm_86");
  CHECK(KernelKey::parse("repack_weights/sm_86") == repack);
}

TEST_CASE("packed keys differ whenever a field differs", "[key]") {
  std::set<std::uint64_t> seen;
  const KernelKey base = dense_key();
  auto add = [&](KernelKey k) {
    k.validate();
    CHECK(seen.insert(k.packed()).second);
  };
  add(base);
  for (int arch : {80, 86, 89}) {
    auto k = base;
    k.arch = arch;
    add(k);
  }
  {
    auto k = base;
    k.activation_dtype = DType::f16;
    add(k);
  }
  for (std::uint16_t tk : {64, 256}) {
    auto k = base;
    k.tile.tile_k = tk;
    add(k);
  }
  for (std::uint16_t tn : {64, 256}) {
    auto k = base;
    k.tile.tile_n = tn;
    add(k);
  }
  for (std::uint8_t mb : {1, 2, 3}) {
    auto k = base;
    k.tile.m_blocks = mb;
    add(k);
  }
  {
    auto k = base;
    k.tile.stages = 3;
    add(k);
  }
  {
    auto k = base;
    k.tile.threads = 128;
    add(k);
  }
  {
    auto k = base;
    k.tile.tile_n = 256;  // added above; the same tile with wgmma must differ
    k.tile.wgmma = true;
    add(k);
  }
  {
    auto k = base;
    k.tile.m_blocks = 8;  // 128-row wgmma m-tiles: m_blocks needs a fourth bit
    k.tile.wgmma = true;
    add(k);
  }
  {
    auto k = base;
    k.tile.wgmma = true;
    add(k);
    k.tile.resident_blocks = 2;  // the same kernel with a two-block register budget
    add(k);
    k.tile.resident_blocks = 0;
    k.tile.specialized = true;  // and warp-specialized
    add(k);
  }
  {
    auto k = base;
    k.moe = true;
    add(k);
    k.activation = Activation::relu2;
    add(k);
    k.topk_weight = true;
    add(k);
    k.activation = Activation::silu;
    k.gated = true;
    add(k);
  }
  for (auto kind : {KernelKind::repack_weights, KernelKind::repack_scales, KernelKind::selftest}) {
    KernelKey k;
    k.kind = kind;
    k.arch = 90;
    add(k);
  }
}

TEST_CASE("bad keys and arch strings are rejected with a message", "[key]") {
  auto rejects = [](const char* text, const char* fragment) {
    try {
      KernelKey::parse(text);
      FAIL("accepted " << text);
    } catch (const Error& e) {
      CHECK(e.status() == Status::invalid_argument);
      CHECK_THAT(e.what(), Catch::Contains(fragment));
    }
  };
  rejects("", "unknown kernel kind");
  rejects("gemm/e2m1/g16/bf16/dense/t128x128/m4/s4/w256", "10 parts");
  rejects("gemm/e2m1/g16/bf16/dense/t128x256/m4/s4/w256/mma/sm_90", "must be 'wgmma'");
  rejects("gemm/e2m1/g16/bf16/dense/t128x128/m4/s4/w256/b2/mma/sm_90", "part 11 of 12");
  rejects("gemm/e2m1/g16/bf16/dense/t128x128/m4/s4/w256/x2/wgmma/sm_90", "like b2 or 'ws'");
  rejects("gemm/e2m1/g16/bf16/dense/t128x256/m8/s4/w256/ws/wgmma/sm_90", "always warp-specialized");
  rejects("gemm/e2m1/g16/bf16/dense/t128x128/m4/s4/w256/b3/wgmma/sm_90", "only b2 exists");
  rejects("gemm/e2m1/g16/bf16/dense/t128x256/m4/s4/w256/b2/wgmma/sm_90", "only b2 exists");
  rejects("gemm/e2m1/g16/bf16/dense/t128x128/m8/s4/w256/b2/wgmma/sm_90", "128x128 tiles");
  rejects("gemm/e2m1/g16/bf16/dense/t128x128/m4/s4/w256/a/b2/wgmma/sm_90", "got 13");
  rejects("gemm/e2m1/g16/bf16/dense/t128x256/m4/s4/w256/wgmma/sm_80", "sm_90 only");
  rejects("gemm/e2m1/g16/bf16/dense/t128x64/m4/s4/w256/wgmma/sm_90", "128- or 256-column");
  rejects("gemm/e2m1/g16/bf16/dense/t128x128/m4/s4/w128/wgmma/sm_90", "256 threads");
  CHECK(KernelKey::parse("gemm/e2m1/g16/bf16/dense/t128x128/m4/s4/w256/wgmma/sm_90").tile.wgmma);
  rejects("gemm/e2m1/g16/bf16/dense/t128x256/m2/s4/w256/wgmma/sm_90", "4 or 8 m-blocks");
  CHECK(KernelKey::parse("gemm/e2m1/g16/bf16/dense/t128x256/m8/s4/w256/wgmma/sm_90").tile.wgmma);
  rejects("gemm/e2m1/g16/bf16/dense/t128x128/m8/s4/w256/sm_90", "or 8 with wgmma");
  CHECK(
      KernelKey::parse("gemm/e2m1/g16/bf16/dense/t128x128/m8/s4/w256/wgmma/sm_90").tile.m_blocks ==
      8);
  rejects("gemm/int4/g16/bf16/dense/t128x128/m4/s4/w256/sm_90", "scalar type");
  rejects("gemm/e2m1/g32/bf16/dense/t128x128/m4/s4/w256/sm_90", "group size 32");
  rejects("gemm/e2m1/g16/f32/dense/t128x128/m4/s4/w256/sm_90", "activation dtype");
  rejects("gemm/e2m1/g16/bf16/dense/t96x128/m4/s4/w256/sm_90", "tile 96x128");
  rejects("gemm/e2m1/g16/bf16/dense/t128x128/m5/s4/w256/sm_90", "m_blocks 5");
  rejects("gemm/e2m1/g16/bf16/dense/t128x128/m4/s1/w256/sm_90", "stages 1");
  rejects("gemm/e2m1/g16/bf16/dense/t128x128/m4/s4/w512/sm_90", "512 threads");
  rejects("gemm/e2m1/g16/bf16/moe-gelu/t128x128/m4/s4/w256/sm_90", "unknown MoE flag");
  rejects("gemm/e2m1/g16/bf16/moe-gated/t128x128/m4/s4/w256/sm_90", "needs an activation");
  rejects("gemm/e2m1/g16/bf16/dense/t128x128/m4/s4/w256/sm_75", "unsupported architecture");
  rejects("gemm/e2m1/g16/bf16/dense/t128x128/m4/s4/w256/sm90", "expected sm_XY");
  rejects("repack_weights/sm_90/extra", "exactly one part");
  CHECK_THROWS_AS(parse_arch("compute_90"), Error);
  CHECK(parse_arch("sm_89") == 89);
}
