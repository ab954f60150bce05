#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "marlinrt/error.hpp"
#include "marlinrt/kernel_key.hpp"
#include "runtime/specialization.hpp"

using namespace marlinrt;
using detail::render_unit;

namespace {

KernelKey gemm_key() {
  KernelKey k;
  k.activation_dtype = DType::bf16;
  k.tile = {128, 128, 4, 4, 256};
  k.arch = 90;
  return k;
}

KernelKey helper_key(KernelKind kind, int arch = 90) {
  KernelKey k;
  k.kind = kind;
  k.arch = arch;
  return k;
}

}  // namespace

TEST_CASE("a dense gemm key renders exactly the documented unit", "[jit]") {
  CHECK(
      render_unit(gemm_key()) ==
      "#include \"gemm.cuh\"\n"
      "typedef marlinrt::kern::GemmConfig<1, 128, 128, 4, 4, 256, false, 0, false, false, false, "
      "0, false> "
      "Cfg;\n"
      "extern \"C\" __global__ void __launch_bounds__(Cfg::launch_threads, Cfg::min_blocks_per_sm) "
      "marlinrt_kernel(const marlinrt::kern::GemmParams params) {\n"
      "  marlinrt::kern::gemm_kernel<Cfg>(params);\n"
      "}\n");
}

TEST_CASE("a MoE gemm key renders its epilogue flags", "[jit]") {
  KernelKey k = gemm_key();
  k.activation_dtype = DType::f16;
  k.moe = true;
  k.activation = Activation::relu2;
  k.topk_weight = true;
  k.tile = {64, 256, 2, 3, 128};
  const std::string unit = render_unit(k);
  CHECK_THAT(unit,
             Catch::Contains("__launch_bounds__(Cfg::launch_threads, Cfg::min_blocks_per_sm)"));
  CHECK_THAT(unit, Catch::Contains(
                       "GemmConfig<0, 64, 256, 2, 3, 128, true, 2, false, true, false, 0, false>"));

  k.activation = Activation::silu;
  k.gated = true;
  k.topk_weight = false;
  CHECK_THAT(
      render_unit(k),
      Catch::Contains("GemmConfig<0, 64, 256, 2, 3, 128, true, 1, true, false, false, 0, false>"));
}

TEST_CASE("every gemm field changes the rendered unit", "[jit]") {
  std::set<std::string> units;
  auto add = [&](const KernelKey& k, const char* what) {
    INFO("varying " << what << ": " << k.to_string());
    CHECK(units.insert(render_unit(k)).second);
  };
  const KernelKey base = gemm_key();
  add(base, "nothing");
  {
    auto k = base;
    k.activation_dtype = DType::f16;
    add(k, "activation dtype");
  }
  {
    auto k = base;
    k.tile.tile_k = 64;
    add(k, "tile_k");
  }
  {
    auto k = base;
    k.tile.tile_n = 256;
    add(k, "tile_n");
  }
  {
    auto k = base;
    k.tile.m_blocks = 2;
    add(k, "m_blocks");
  }
  {
    auto k = base;
    k.tile.stages = 3;
    add(k, "stages");
  }
  {
    auto k = base;
    k.tile.threads = 128;
    add(k, "threads");
  }
  {
    auto k = base;
    k.tile.tile_n = 256;
    k.tile.wgmma = true;
    k.arch = 90;
    add(k, "wgmma");
  }
  {
    auto k = base;
    k.tile.wgmma = true;
    k.tile.resident_blocks = 2;
    k.arch = 90;
    add(k, "resident blocks");
  }
  {
    auto k = base;
    k.tile.wgmma = true;
    k.tile.specialized = true;
    k.arch = 90;
    add(k, "warp-specialized");
  }
  auto moe = base;
  moe.moe = true;
  add(moe, "moe");
  moe.activation = Activation::silu;
  add(moe, "activation silu");
  moe.activation = Activation::relu2;
  add(moe, "activation relu2");
  moe.gated = true;
  add(moe, "gated");
  moe.topk_weight = true;
  add(moe, "top-k weight");
}

TEST_CASE("helper kernels render their template, params struct and entry", "[jit]") {
  const std::string weights = render_unit(helper_key(KernelKind::repack_weights));
  CHECK(weights ==
        "#include \"repack.cuh\"\n"
        "extern \"C\" __global__ void marlinrt_kernel(const marlinrt::kern::RepackWeightsParams "
        "params) { marlinrt::kern::repack_weights(params); }\n");
  const std::string scales = render_unit(helper_key(KernelKind::repack_scales));
  CHECK_THAT(scales, Catch::Contains("#include \"repack.cuh\""));
  CHECK_THAT(scales, Catch::Contains("marlinrt_kernel(const marlinrt::kern::RepackScalesParams"));
  CHECK_THAT(scales, Catch::Contains("marlinrt::kern::repack_scales(params);"));
  const std::string selftest = render_unit(helper_key(KernelKind::selftest));
  CHECK_THAT(selftest, Catch::Contains("#include \"selftest.cuh\""));
  CHECK_THAT(selftest, Catch::Contains("extern \"C\" __global__ void marlinrt_kernel(const "
                                       "marlinrt::kern::SelftestParams params)"));
  CHECK(weights != scales);
  CHECK(scales != selftest);
  // The target is not in the unit: it enters the cache key and NVRTC's options.
  CHECK(render_unit(helper_key(KernelKind::selftest, 80)) == selftest);
}

TEST_CASE("rendering an invalid key is refused with the key's problem", "[jit]") {
  KernelKey k = gemm_key();
  k.tile.tile_k = 96;
  try {
    render_unit(k);
    FAIL("rendered an invalid key");
  } catch (const Error& e) {
    CHECK(e.status() == Status::invalid_argument);
    CHECK_THAT(e.what(), Catch::Contains("tile 96x128"));
  }
}
