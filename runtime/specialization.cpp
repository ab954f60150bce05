#include "runtime/specialization.hpp"

#include <fmt/format.h>

#include "runtime/fail.hpp"

namespace marlinrt::detail {
namespace {

// Template argument codes shared with kernel_templates/gemm.cuh.
int activation_dtype_code(DType t) { return t == DType::f16 ? 0 : 1; }

int activation_function_code(Activation a) {
  switch (a) {
    case Activation::none:
      return 0;
    case Activation::silu:
      return 1;
    case Activation::relu2:
      return 2;
  }
  fail(Status::internal, "unknown activation code {}", static_cast<int>(a));
}

const char* boolean(bool b) { return b ? "true" : "false"; }

std::string render_gemm(const KernelKey& key) {
  const GemmTile& t = key.tile;
  return fmt::format(
      "#include \"gemm.cuh\"\n"
      "typedef marlinrt::kern::GemmConfig<{act}, {tile_k}, {tile_n}, {m_blocks}, {stages}, "
      "{threads}, {moe}, {actfn}, {gated}, {topkw}, {wgmma}, {resident}, {specialized}> Cfg;\n"
      "extern \"C\" __global__ void __launch_bounds__(Cfg::launch_threads, Cfg::min_blocks_per_sm) "
      "marlinrt_kernel(const marlinrt::kern::GemmParams params) {{\n"
      "  marlinrt::kern::gemm_kernel<Cfg>(params);\n"
      "}}\n",
      fmt::arg("threads", t.threads), fmt::arg("act", activation_dtype_code(key.activation_dtype)),
      fmt::arg("tile_k", t.tile_k), fmt::arg("tile_n", t.tile_n),
      fmt::arg("m_blocks", static_cast<int>(t.m_blocks)),
      fmt::arg("stages", static_cast<int>(t.stages)), fmt::arg("moe", boolean(key.moe)),
      fmt::arg("actfn", activation_function_code(key.activation)),
      fmt::arg("gated", boolean(key.gated)), fmt::arg("topkw", boolean(key.topk_weight)),
      fmt::arg("wgmma", boolean(t.wgmma)),
      fmt::arg("resident", static_cast<int>(t.resident_blocks)),
      fmt::arg("specialized", boolean(t.specialized)));
}

// A helper kernel: `header` defines `params_type` and the device function `entry`.
std::string render_helper(const char* header, const char* params_type, const char* entry) {
  return fmt::format(
      "#include \"{}\"\n"
      "extern \"C\" __global__ void marlinrt_kernel(const marlinrt::kern::{} params) {{ "
      "marlinrt::kern::{}(params); }}\n",
      header, params_type, entry);
}

}  // namespace

std::string render_unit(const KernelKey& key) {
  key.validate();
  switch (key.kind) {
    case KernelKind::gemm:
      return render_gemm(key);
    case KernelKind::repack_weights:
      return render_helper("repack.cuh", "RepackWeightsParams", "repack_weights");
    case KernelKind::repack_scales:
      return render_helper("repack.cuh", "RepackScalesParams", "repack_scales");
    case KernelKind::selftest:
      return render_helper("selftest.cuh", "SelftestParams", "selftest");
  }
  fail(Status::invalid_argument, "kernel key: unknown kernel kind {}", static_cast<int>(key.kind));
}

}  // namespace marlinrt::detail
