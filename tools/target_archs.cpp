#include "tools/target_archs.hpp"

#include <algorithm>

#include "marlinrt/kernel_key.hpp"
#include "runtime/dense_dispatch.hpp"
#include "runtime/fail.hpp"
#include "tools/gpu_inventory.hpp"

namespace marlinrt::cli {

std::vector<int> resolve_target_archs(const std::vector<std::string>& arch_args) {
  std::vector<int> archs;
  auto add = [&archs](int arch) {
    if (std::find(archs.begin(), archs.end(), arch) == archs.end()) archs.push_back(arch);
  };
  for (const auto& text : arch_args) {
    // CLI11 already splits on ',', but a value may still arrive whole from callers.
    std::string_view rest = text;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const auto part = rest.substr(0, comma);
      if (!part.empty()) add(parse_arch(part));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  if (!archs.empty() || !arch_args.empty()) {
    if (archs.empty()) {
      detail::fail(Status::invalid_argument, "--arch is empty: expected e.g. --arch sm_80,sm_90");
    }
    return archs;
  }
  const auto& inventory = gpu_inventory();
  for (const auto& gpu : inventory.gpus) add(gpu.compute_capability);
  if (archs.empty()) {
    detail::fail(
        Status::invalid_argument,
        "no GPU found here ({}): pass the target architectures with --arch, e.g. "
        "--arch sm_80,sm_90",
        inventory.driver_usable ? "the driver reports no devices" : inventory.driver_reason);
  }
  // A GPU the kernels cannot target (e.g. sm_75) is an error, not a silent skip.
  for (int arch : archs) parse_arch(arch_name(arch));
  return archs;
}

int sm_count_for_arch(int arch, int override_sm_count) {
  if (override_sm_count > 0) return override_sm_count;
  for (const auto& gpu : gpu_inventory().gpus) {
    if (gpu.compute_capability == arch) return gpu.sm_count;
  }
  return detail::default_sm_count(arch);
}

bool key_text_has_arch(std::string_view text) {
  const auto slash = text.rfind('/');
  const auto last = slash == std::string_view::npos ? text : text.substr(slash + 1);
  return last.substr(0, 3) == "sm_";
}

}  // namespace marlinrt::cli
