// The `marlinrt` command: argument parsing (CLI11) and error reporting. Each
// subcommand lives in its own tools/command_*.cpp; this is the only file that
// includes CLI11 (it is a heavy header).
#include <cstdio>
#include <exception>
#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "marlinrt/error.hpp"
#include "marlinrt/runtime.hpp"
#include "tools/command_bench.hpp"
#include "tools/command_cache.hpp"
#include "tools/command_demo.hpp"
#include "tools/command_explain.hpp"
#include "tools/command_info.hpp"
#include "tools/command_prebuild.hpp"

namespace {

using namespace marlinrt::cli;

constexpr int kUsageOrError = 2;  // usage errors and marlinrt::Error

void add_arch_option(CLI::App& command, std::vector<std::string>& archs, const char* what) {
  // One value per --arch (comma-separated lists allowed), so a key after it stays a key.
  command.add_option("--arch", archs, what)
      ->delimiter(',')
      ->allow_extra_args(false)
      ->type_name("sm_XX[,sm_YY...]");
}

int run(int argc, char** argv) {
  CLI::App app{
      "marlinrt: NVFP4 (ModelOpt FP4) linear and MoE layers on Ampere, Ada and Hopper GPUs, "
      "with JIT-compiled kernels and an on-disk kernel cache.\n"
      "Environment: MARLINRT_CACHE_DIR, MARLINRT_JIT, MARLINRT_LOG, ... (see docs/environment.md)",
      "marlinrt"};
  app.set_version_flag("--version", std::string(marlinrt::version()));
  app.require_subcommand(1);
  std::function<int()> action;

  // info
  InfoOptions info;
  auto* info_cmd = app.add_subcommand(
      "info", "Library and kernel ABI versions, CUDA driver, GPUs and their backend, NVRTC, cache");
  info_cmd->add_flag("--json", info.json, "Machine-readable output");
  info_cmd->callback([&] { action = [&] { return run_info(info); }; });

  // prebuild
  PrebuildOptions prebuild;
  auto* prebuild_cmd = app.add_subcommand(
      "prebuild",
      "Compile kernels into the cache ahead of time (no GPU needed). Keys come from the "
      "arguments, a model-shapes file and/or a usage log");
  prebuild_cmd
      ->add_option("keys", prebuild.keys,
                   "Kernel keys, e.g. repack_weights/sm_90 or "
                   "gemm/e2m1/g16/bf16/dense/t128x128/m4/s4/w256/sm_90; without the final "
                   "/sm_XX a key is built for every --arch")
      ->type_name("KEY");
  prebuild_cmd
      ->add_option("--shapes", prebuild.shapes_file,
                   "JSON model shapes: {\"dtype\": \"bf16\", \"max_m\": 4096, \"layers\": "
                   "[{\"name\": \"qkv\", \"n\": 6144, \"k\": 4096}, ...]}")
      ->check(CLI::ExistingFile)
      ->type_name("FILE");
  prebuild_cmd
      ->add_option("--replay", prebuild.replay_file,
                   "Usage log recorded with MARLINRT_RECORD=FILE (one key per line)")
      ->check(CLI::ExistingFile)
      ->type_name("FILE");
  add_arch_option(*prebuild_cmd, prebuild.archs,
                  "Target architectures (default: those of the GPUs present)");
  prebuild_cmd->add_option("-j,--jobs", prebuild.jobs, "Parallel compiles (default: all cores)")
      ->check(CLI::PositiveNumber);
  prebuild_cmd
      ->add_option("--sm-count", prebuild.sm_count,
                   "SM count the dense dispatch assumes for --shapes (default: the GPU's, or "
                   "the flagship part of each arch)")
      ->check(CLI::PositiveNumber);
  prebuild_cmd->add_flag("-v,--verbose", prebuild.verbose, "One line per kernel");
  prebuild_cmd->add_flag(
      "--dry-run", prebuild.dry_run,
      "Print the kernel keys that would be built, one per line; compile nothing");
  prebuild_cmd->callback([&] {
    if (prebuild.keys.empty() && prebuild.shapes_file.empty() && prebuild.replay_file.empty()) {
      throw CLI::ValidationError(
          "prebuild", "nothing to build: give kernel keys, --shapes FILE or --replay FILE");
    }
    action = [&] { return run_prebuild(prebuild); };
  });

  // cache list|stats|verify|gc|clear
  CacheOptions cache;
  auto* cache_cmd = app.add_subcommand("cache", "Inspect and maintain the kernel cache");
  cache_cmd->require_subcommand(1);
  const struct {
    const char* name;
    CacheAction action;
    const char* help;
    bool has_json;
  } cache_actions[] = {
      {"list", CacheAction::list, "Entries: id, kernel, size, last use", true},
      {"stats", CacheAction::stats, "Entry count, bytes, cap, entries per kind and arch", true},
      {"verify", CacheAction::verify, "Check every entry; exit 1 if any is invalid", false},
      {"gc", CacheAction::gc,
       "Remove invalid entries and stale temporary files, enforce MARLINRT_CACHE_MAX_BYTES", false},
      {"clear", CacheAction::clear, "Remove every entry", false},
  };
  for (const auto& a : cache_actions) {
    auto* sub = cache_cmd->add_subcommand(a.name, a.help);
    if (a.has_json) sub->add_flag("--json", cache.json, "Machine-readable output");
    const CacheAction which = a.action;
    sub->callback([&, which] {
      cache.action = which;
      action = [&] { return run_cache(cache); };
    });
  }

  // explain
  ExplainOptions explain;
  auto* explain_cmd = app.add_subcommand(
      "explain",
      "Show a kernel's cache key parts and hash, its entry, and why a lookup would miss");
  explain_cmd->add_option("key", explain.key, "Kernel key, e.g. repack_weights/sm_90")
      ->required()
      ->type_name("KEY");
  add_arch_option(*explain_cmd, explain.archs, "Architectures for a key given without /sm_XX");
  explain_cmd->callback([&] { action = [&] { return run_explain(explain); }; });

  // demo
  DemoOptions demo;
  auto* demo_cmd = app.add_subcommand(
      "demo",
      "See it work: with a GPU, run a random NVFP4 layer and check it; without, compile the "
      "preparation kernels into the cache");
  add_arch_option(*demo_cmd, demo.archs,
                  "Without a GPU: archs to compile for (default sm_80..sm_90)");
  demo_cmd->add_option("--dtype", demo.dtype, "Activation dtype: bf16 or f16")
      ->check(CLI::IsMember({"bf16", "f16"}));
  demo_cmd->add_option("-m", demo.m, "Tokens (rows of x)")->check(CLI::PositiveNumber);
  demo_cmd->add_option("-n", demo.n, "Output features")->check(CLI::PositiveNumber);
  demo_cmd->add_option("-k", demo.k, "Input features (a multiple of 16)")
      ->check(CLI::PositiveNumber);
  demo_cmd->add_option("--seed", demo.seed, "Random seed");
  demo_cmd->callback([&] { action = [&] { return run_demo(demo); }; });

  // bench dense|jit
  auto* bench_cmd = app.add_subcommand("bench", "Benchmarks (need a GPU)");
  bench_cmd->require_subcommand(1);
  BenchDenseArgs dense;
  auto* dense_cmd = bench_cmd->add_subcommand(
      "dense", "Dense NVFP4 linear vs cuBLAS and the memory-bandwidth bound; writes CSV and PNG");
  dense_cmd->add_option("--out", dense.out, "Output directory")->type_name("DIR");
  dense_cmd
      ->add_option("--shapes", dense.shapes,
                   "Shapes as NxK[,NxK...] or a shapes JSON file (default: the shapes of "
                   "Llama, Nemotron and DeepSeek layers)")
      ->type_name("SHAPES");
  dense_cmd->add_option("--m", dense.m, "Token counts, e.g. 1,16,256")
      ->delimiter(',')
      ->check(CLI::PositiveNumber);
  dense_cmd->add_option("--dtype", dense.dtypes, "Activation dtypes: bf16, f16")
      ->delimiter(',')
      ->check(CLI::IsMember({"bf16", "f16"}));
  dense_cmd->add_option("--warmup", dense.warmup, "Warm-up launches per case")
      ->check(CLI::NonNegativeNumber);
  dense_cmd->add_option("--reps", dense.reps, "Timed launches per case")
      ->check(CLI::PositiveNumber);
  dense_cmd->add_flag("--trace", dense.trace,
                      "Build the GEMM with per-block timestamps and write trace.csv (timings then "
                      "include the trace stores)");
  dense_cmd->callback([&] { action = [&] { return run_bench_dense_command(dense); }; });
  BenchJitArgs jit;
  auto* jit_cmd = bench_cmd->add_subcommand(
      "jit", "JIT costs: cold compile, warm disk hit, launch overhead vs raw cuLaunchKernel");
  add_arch_option(*jit_cmd, jit.archs,
                  "Target architecture (default: the GPU's; without a GPU only the compile and "
                  "disk-hit times are measured)");
  jit_cmd->add_option("--launches", jit.launches, "Launches timed for the overhead (0: skip)")
      ->check(CLI::NonNegativeNumber);
  jit_cmd->callback([&] { action = [&] { return run_bench_jit_command(jit); }; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints the message and "Run with --help ..."
    return code == 0 ? 0 : kUsageOrError;
  }
  return action ? action() : kUsageOrError;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const marlinrt::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "marlinrt: error: %s\n", e.what());
    return kUsageOrError;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "marlinrt: internal error: %s\n", e.what());
    return kUsageOrError;
  }
}
