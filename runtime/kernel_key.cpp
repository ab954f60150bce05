#include "marlinrt/kernel_key.hpp"

#include <array>
#include <charconv>
#include <vector>

#include <fmt/format.h>

#include "runtime/fail.hpp"
#include "runtime/wgmma_tile.hpp"

namespace marlinrt {
namespace {

using detail::fail;

constexpr std::array kArchs = {80, 86, 87, 89, 90, 100, 103, 110, 120, 121};

std::string_view kind_name(KernelKind k) {
  switch (k) {
    case KernelKind::gemm:
      return "gemm";
    case KernelKind::repack_weights:
      return "repack_weights";
    case KernelKind::repack_scales:
      return "repack_scales";
    case KernelKind::selftest:
      return "selftest";
  }
  return "?";
}

std::string_view activation_name(Activation a) {
  switch (a) {
    case Activation::none:
      return "none";
    case Activation::silu:
      return "silu";
    case Activation::relu2:
      return "relu2";
  }
  return "?";
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  for (;;) {
    auto pos = s.find(sep);
    parts.push_back(s.substr(0, pos));
    if (pos == std::string_view::npos) return parts;
    s.remove_prefix(pos + 1);
  }
}

// Parses "<prefix><unsigned>" exactly; returns false otherwise.
bool parse_number(std::string_view s, std::string_view prefix, unsigned& out) {
  if (s.substr(0, prefix.size()) != prefix) return false;
  s.remove_prefix(prefix.size());
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

[[noreturn]] void bad_key(std::string_view text, std::string_view why) {
  fail(Status::invalid_argument,
       "invalid kernel key '{}': {} (expected e.g. 'gemm/e2m1/g16/bf16/dense/t128x128/m4/s4/w256/"
       "sm_90' or 'repack_weights/sm_90')",
       text, why);
}

}  // namespace

int parse_arch(std::string_view text) {
  unsigned v = 0;
  if (!parse_number(text, "sm_", v)) {
    fail(Status::invalid_argument, "invalid architecture '{}': expected sm_XY, e.g. sm_80 or sm_90",
         text);
  }
  for (int a : kArchs) {
    if (a == static_cast<int>(v)) return a;
  }
  fail(Status::invalid_argument, "unsupported architecture '{}': expected one of {}", text,
       fmt::join(kArchs, ", "));
}

std::string arch_name(int arch) { return fmt::format("sm_{}", arch); }

std::string compile_target(const KernelKey& key) {
  return key.kind == KernelKind::gemm && key.tile.wgmma ? "sm_90a" : arch_name(key.arch);
}

void KernelKey::validate() const {
  bool arch_ok = false;
  for (int a : kArchs) arch_ok |= a == arch;
  if (!arch_ok) {
    fail(Status::invalid_argument, "kernel key: unsupported arch {} (expected one of {})", arch,
         fmt::join(kArchs, ", "));
  }
  if (kind != KernelKind::gemm) return;  // the helper kernels take only an arch
  if (scalar != ScalarType::e2m1) fail(Status::invalid_argument, "kernel key: unknown scalar type");
  if (group_size != 16) {
    fail(Status::invalid_argument, "kernel key: group size {} (NVFP4 uses 16)", group_size);
  }
  if (activation_dtype != DType::f16 && activation_dtype != DType::bf16) {
    fail(Status::invalid_argument, "kernel key: activation dtype {} (expected f16 or bf16)",
         dtype_name(activation_dtype));
  }
  if (!moe && (activation != Activation::none || gated || topk_weight)) {
    fail(Status::invalid_argument,
         "kernel key: activation, gating and top-k weights are MoE-only (dense keys have none)");
  }
  if (gated && activation == Activation::none) {
    fail(Status::invalid_argument, "kernel key: a gated MoE GEMM needs an activation");
  }
  const auto& t = tile;
  const bool k_ok = t.tile_k == 64 || t.tile_k == 128 || t.tile_k == 256;
  const bool n_ok = t.tile_n == 64 || t.tile_n == 128 || t.tile_n == 256;
  if (!k_ok || !n_ok) {
    fail(Status::invalid_argument,
         "kernel key: tile {}x{} (tile_k and tile_n must be 64, 128 or 256)", t.tile_k, t.tile_n);
  }
  if ((t.m_blocks < 1 || t.m_blocks > 4) && !(t.wgmma && t.m_blocks == 8)) {
    fail(Status::invalid_argument, "kernel key: m_blocks {} (expected 1..4, or 8 with wgmma)",
         t.m_blocks);
  }
  if (t.stages < 2 || t.stages > 8) {
    fail(Status::invalid_argument, "kernel key: stages {} (expected 2..8)", t.stages);
  }
  if (t.threads != 128 && t.threads != 256) {
    fail(Status::invalid_argument, "kernel key: {} threads (expected 128 or 256)", t.threads);
  }
  if (t.wgmma && (arch != 90 || !detail::wgmma_tile_shape(t))) {
    fail(Status::invalid_argument,
         "kernel key: wgmma kernels are sm_90 only, with 256 threads, 4 or 8 m-blocks and "
         "128- or 256-column tiles (got {}, m{}, w{}, t{}x{})",
         arch_name(arch), t.m_blocks, t.threads, t.tile_k, t.tile_n);
  }
  if (t.resident_blocks != 0 && (t.resident_blocks != 2 || !detail::wgmma_two_block_tile(t))) {
    fail(Status::invalid_argument,
         "kernel key: a register budget for {} resident blocks (b{}); only b2 exists, for the "
         "64-row wgmma kernel on 128x128 tiles (m4, t128x128, wgmma)",
         t.resident_blocks, t.resident_blocks);
  }
  if (t.specialized && (!t.wgmma || t.m_blocks != 4 || t.resident_blocks != 0)) {
    fail(Status::invalid_argument,
         "kernel key: 'ws' (warp-specialized) is a variant of the 64-row wgmma kernel only "
         "(m4, wgmma, no register budget b2); the 128-row kernel is always warp-specialized");
  }
}

std::string KernelKey::to_string() const {
  if (kind != KernelKind::gemm) return fmt::format("{}/{}", kind_name(kind), arch_name(arch));
  std::string mode = "dense";
  if (moe) {
    mode = "moe";
    if (activation != Activation::none) mode += fmt::format("-{}", activation_name(activation));
    if (gated) mode += "-gated";
    if (topk_weight) mode += "-topkw";
  }
  const std::string variant = tile.resident_blocks ? fmt::format("b{}/", tile.resident_blocks)
                              : tile.specialized   ? std::string("ws/")
                                                   : std::string();
  return fmt::format("gemm/e2m1/g{}/{}/{}/t{}x{}/m{}/s{}/w{}/{}{}{}", group_size,
                     dtype_name(activation_dtype), mode, tile.tile_k, tile.tile_n, tile.m_blocks,
                     tile.stages, tile.threads, variant, tile.wgmma ? "wgmma/" : "",
                     arch_name(arch));
}

KernelKey KernelKey::parse(std::string_view text) {
  const auto parts = split(text, '/');
  KernelKey key;
  const auto& head = parts[0];
  if (head == "repack_weights" || head == "repack_scales" || head == "selftest") {
    if (parts.size() != 2) bad_key(text, "helper kernels take exactly one part: the arch");
    key.kind = head == "repack_weights"  ? KernelKind::repack_weights
               : head == "repack_scales" ? KernelKind::repack_scales
                                         : KernelKind::selftest;
    key.arch = parse_arch(parts[1]);
    return key;
  }
  if (head != "gemm") bad_key(text, fmt::format("unknown kernel kind '{}'", head));
  // 10 parts; before the arch optionally "wgmma", and before that a variant: a register
  // budget "bB" or "ws" (warp-specialized).
  if (parts.size() < 10 || parts.size() > 12) {
    bad_key(
        text,
        fmt::format("a gemm key has 10 parts (11 with wgmma, 12 with bB/wgmma or ws/wgmma), got {}",
                    parts.size()));
  }
  if (parts.size() >= 11 && parts[parts.size() - 2] != "wgmma") {
    bad_key(text, fmt::format("part {} of {} must be 'wgmma', got '{}'", parts.size() - 1,
                              parts.size(), parts[parts.size() - 2]));
  }
  if (parts[1] != "e2m1") bad_key(text, fmt::format("unknown scalar type '{}'", parts[1]));
  unsigned v = 0, w = 0;
  if (!parse_number(parts[2], "g", v) || v > 255) bad_key(text, "group size must look like g16");
  key.group_size = static_cast<std::uint8_t>(v);
  if (parts[3] == "f16") {
    key.activation_dtype = DType::f16;
  } else if (parts[3] == "bf16") {
    key.activation_dtype = DType::bf16;
  } else {
    bad_key(text, fmt::format("activation dtype '{}' (expected f16 or bf16)", parts[3]));
  }
  const auto mode = split(parts[4], '-');
  if (mode[0] == "dense" && mode.size() == 1) {
    key.moe = false;
  } else if (mode[0] == "moe") {
    key.moe = true;
    for (std::size_t i = 1; i < mode.size(); ++i) {
      if (mode[i] == "silu") {
        key.activation = Activation::silu;
      } else if (mode[i] == "relu2") {
        key.activation = Activation::relu2;
      } else if (mode[i] == "gated") {
        key.gated = true;
      } else if (mode[i] == "topkw") {
        key.topk_weight = true;
      } else {
        bad_key(text, fmt::format("unknown MoE flag '{}' (silu, relu2, gated, topkw)", mode[i]));
      }
    }
  } else {
    bad_key(text, fmt::format("mode '{}' (expected dense or moe[-act][-gated][-topkw])", parts[4]));
  }
  const auto tile = split(parts[5], 'x');
  if (tile.size() != 2 || !parse_number(tile[0], "t", v) || !parse_number(tile[1], "", w) ||
      v > 65535 || w > 65535) {
    bad_key(text, "tile must look like t128x128");
  }
  key.tile.tile_k = static_cast<std::uint16_t>(v);
  key.tile.tile_n = static_cast<std::uint16_t>(w);
  if (!parse_number(parts[6], "m", v) || v > 255) bad_key(text, "m-blocks must look like m4");
  key.tile.m_blocks = static_cast<std::uint8_t>(v);
  if (!parse_number(parts[7], "s", v) || v > 255) bad_key(text, "stages must look like s4");
  key.tile.stages = static_cast<std::uint8_t>(v);
  if (!parse_number(parts[8], "w", v) || v > 65535) bad_key(text, "threads must look like w256");
  key.tile.threads = static_cast<std::uint16_t>(v);
  key.tile.wgmma = parts.size() >= 11;
  if (parts.size() == 12) {
    if (parts[9] == "ws") {
      key.tile.specialized = true;
    } else if (!parse_number(parts[9], "b", v) || v > 255) {
      bad_key(text, fmt::format("part 10 of 12 must be a register budget like b2 or 'ws', got '{}'",
                                parts[9]));
    } else {
      key.tile.resident_blocks = static_cast<std::uint8_t>(v);
    }
  }
  key.arch = parse_arch(parts.back());
  key.validate();
  return key;
}

std::uint64_t KernelKey::packed() const {
  // 58 bits in all; see the field widths below. Only meaningful for valid keys.
  std::uint64_t p = 0;
  auto put = [&p](std::uint64_t value, int bits) {
    p = (p << bits) | (value & ((1u << bits) - 1));
  };
  put(static_cast<unsigned>(kind), 4);
  put(static_cast<unsigned>(scalar), 4);
  put(group_size, 8);
  put(static_cast<unsigned>(activation_dtype), 3);
  put(moe, 1);
  put(static_cast<unsigned>(activation), 2);
  put(gated, 1);
  put(topk_weight, 1);
  put(tile.tile_k / 16u, 5);
  put(tile.tile_n / 16u, 5);
  put(tile.m_blocks, 4);
  put(tile.stages, 4);
  put(tile.threads / 32u, 4);
  put(tile.wgmma, 1);
  put(tile.resident_blocks, 3);
  put(tile.specialized, 1);
  put(static_cast<unsigned>(arch), 8);
  return p;
}

}  // namespace marlinrt
