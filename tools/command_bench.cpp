#include "tools/command_bench.hpp"

#include <charconv>
#include <filesystem>
#include <string_view>

#include <fmt/format.h>

#include "runtime/fail.hpp"
#include "runtime/jit_benchmark.hpp"
#include "tools/bench_dense.hpp"
#include "tools/shapes_file.hpp"
#include "tools/target_archs.hpp"

namespace marlinrt::cli {
namespace {

std::int64_t parse_dimension(std::string_view text, std::string_view whole) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v <= 0) {
    detail::fail(Status::invalid_argument,
                 "--shapes '{}': '{}' is not a positive integer (expected NxK[,NxK...], e.g. "
                 "6144x4096, or a shapes JSON file)",
                 whole, text);
  }
  return v;
}

// "6144x4096,4096x14336" or the path of a shapes JSON file.
std::vector<DenseBenchShape> parse_bench_shapes(const std::string& text) {
  std::vector<DenseBenchShape> shapes;
  std::error_code ec;
  if (std::filesystem::is_regular_file(text, ec)) {
    for (const auto& layer : read_shapes_file(text).layers) {
      shapes.push_back({layer.n, layer.k, layer.name});
    }
    return shapes;
  }
  std::string_view rest = text;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    const auto x = item.find('x');
    if (x == std::string_view::npos) {
      detail::fail(Status::invalid_argument,
                   "--shapes '{}': '{}' is neither NxK nor an existing file", text, item);
    }
    shapes.push_back(
        {parse_dimension(item.substr(0, x), text), parse_dimension(item.substr(x + 1), text), ""});
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return shapes;
}

}  // namespace

int run_bench_dense_command(const BenchDenseArgs& args) {
  BenchDenseOptions options;
  options.output_dir = args.out;
  if (!args.shapes.empty()) options.shapes = parse_bench_shapes(args.shapes);
  options.m_values = args.m;
  for (const auto& d : args.dtypes) options.dtypes.push_back(parse_activation_dtype(d));
  if (args.warmup >= 0) options.warmup = args.warmup;
  if (args.reps > 0) options.repetitions = args.reps;
  options.trace = args.trace;
  return run_bench_dense(options);
}

int run_bench_jit_command(const BenchJitArgs& args) {
  detail::JitBenchmarkOptions options;
  if (!args.archs.empty()) {
    const auto archs = resolve_target_archs(args.archs);
    if (archs.size() != 1) {
      detail::fail(Status::invalid_argument, "bench jit measures one --arch at a time (got {})",
                   archs.size());
    }
    options.arch = archs.front();
  } else {
    options.arch = resolve_target_archs({}).front();  // the GPU's, or ask for --arch
  }
  options.launches = static_cast<std::size_t>(args.launches);
  const detail::JitBenchmarkResult r = detail::run_jit_benchmark(options);
  fmt::print("marlinrt bench jit: self-test kernel for {} (NVRTC {}), {}\n", r.target,
             r.nvrtc_version, r.gpu ? fmt::format("on {}", r.device) : "host only (no GPU)");
  fmt::print("  cold compile   {:>10.2f} ms  (render + NVRTC + store{})\n", r.cold_compile_ms,
             r.gpu ? " + load" : "");
  fmt::print("  warm disk hit  {:>10.3f} ms  (read + check{})\n", r.warm_disk_hit_ms,
             r.gpu ? " + load" : "");
  if (r.gpu && r.launches > 0) {
    fmt::print("  launch via registry   {:>8.0f} ns  (host time per launch, median; {} launches)\n",
               r.registry_launch_ns, r.launches);
    fmt::print("  raw cuLaunchKernel    {:>8.0f} ns\n", r.raw_launch_ns);
    fmt::print("  overhead              {:>+8.0f} ns per launch\n",
               r.registry_launch_ns - r.raw_launch_ns);
  } else if (!r.gpu) {
    fmt::print("  launch overhead: needs a GPU\n");
  }
  return 0;
}

}  // namespace marlinrt::cli
