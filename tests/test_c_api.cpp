// The C ABI (include/marlinrt/marlinrt.h): statuses, the thread-local last
// error, argument checks that never crash, and one layer run through it on a GPU.
#include <catch2/catch.hpp>

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "marlinrt/marlinrt.h"
#include "marlinrt/runtime.hpp"
#include "tests/gpu_guard.hpp"

namespace {

std::string last_error() { return marlinrt_last_error(); }

marlinrt_nvfp4_linear_desc plausible_desc() {
  // Shapes that are valid for N=64, K=64; the pointers are never dereferenced
  // by the tests that use this (they fail on another argument first).
  static std::uint8_t fake[64];
  marlinrt_nvfp4_linear_desc d{};
  d.weight = {fake, MARLINRT_U8, 64, 32, 0};
  d.weight_scale = {fake, MARLINRT_E4M3, 64, 4, 0};
  d.weight_scale_2 = 1.0f;
  d.bias = nullptr;
  return d;
}

}  // namespace

TEST_CASE("C ABI: versions and status names", "[capi]") {
  REQUIRE(marlinrt_version() != nullptr);
  CHECK(std::string(marlinrt_version()) == marlinrt::version());
  CHECK(marlinrt_kernel_abi_version() == marlinrt::kernel_abi_version());
  CHECK(std::string(marlinrt_status_name(MARLINRT_OK)) == "ok");
  CHECK(std::string(marlinrt_status_name(MARLINRT_NO_DRIVER)) == "no_driver");
  CHECK(std::string(marlinrt_status_name(MARLINRT_INTERNAL)) == "internal");
  CHECK(std::string(marlinrt_status_name(static_cast<marlinrt_status>(42))) == "unknown");
  CHECK(std::string(marlinrt_status_name(static_cast<marlinrt_status>(-1))) == "unknown");
}

TEST_CASE("C ABI: backend selection", "[capi]") {
  marlinrt_backend_choice c{};
  REQUIRE(marlinrt_select_fp4_backend(90, &c) == MARLINRT_OK);
  CHECK(c.backend == MARLINRT_BACKEND_MARLIN);
  CHECK(c.marlin_allowed == 1);
  CHECK(std::strlen(c.reason) > 0);
  CHECK_THAT(c.reason, Catch::Contains("sm_90"));

  REQUIRE(marlinrt_select_fp4_backend(75, &c) == MARLINRT_OK);
  CHECK(c.backend == MARLINRT_BACKEND_UNSUPPORTED);
  CHECK(c.marlin_allowed == 0);

  REQUIRE(marlinrt_select_fp4_backend(100, &c) == MARLINRT_OK);
  CHECK(c.backend == MARLINRT_BACKEND_NATIVE_FP4);
  CHECK(c.marlin_allowed == 1);

  CHECK(marlinrt_select_fp4_backend(90, nullptr) == MARLINRT_INVALID_ARGUMENT);
  CHECK_THAT(last_error(), Catch::Contains("out is NULL"));
  CHECK(marlinrt_select_fp4_backend(0, &c) == MARLINRT_INVALID_ARGUMENT);
  CHECK_THAT(last_error(), Catch::Contains("compute capability"));
}

TEST_CASE("C ABI: prepare rejects bad arguments with a status and a message", "[capi]") {
  const marlinrt_nvfp4_linear_desc desc = plausible_desc();
  marlinrt_linear_t* layer = reinterpret_cast<marlinrt_linear_t*>(&layer);  // must be reset

  CHECK(marlinrt_prepare_nvfp4_linear(&desc, MARLINRT_BF16, nullptr, nullptr) ==
        MARLINRT_INVALID_ARGUMENT);
  CHECK_THAT(last_error(), Catch::Contains("out is NULL"));

  CHECK(marlinrt_prepare_nvfp4_linear(nullptr, MARLINRT_BF16, nullptr, &layer) ==
        MARLINRT_INVALID_ARGUMENT);
  CHECK(layer == nullptr);
  CHECK_THAT(last_error(), Catch::Contains("desc is NULL"));

  CHECK(marlinrt_prepare_nvfp4_linear(&desc, MARLINRT_F32, nullptr, &layer) ==
        MARLINRT_INVALID_ARGUMENT);
  CHECK(layer == nullptr);
  CHECK_THAT(last_error(), Catch::Contains("MARLINRT_F16 or MARLINRT_BF16"));

  CHECK(marlinrt_prepare_nvfp4_linear(&desc, static_cast<marlinrt_dtype>(77), nullptr, &layer) ==
        MARLINRT_INVALID_ARGUMENT);
  CHECK_THAT(last_error(), Catch::Contains("77"));

  marlinrt_nvfp4_linear_desc bad_dtype = desc;
  bad_dtype.weight_scale.dtype = static_cast<marlinrt_dtype>(99);
  CHECK(marlinrt_prepare_nvfp4_linear(&bad_dtype, MARLINRT_F16, nullptr, &layer) ==
        MARLINRT_INVALID_ARGUMENT);
  CHECK(layer == nullptr);
  CHECK_THAT(last_error(), Catch::Contains("weight_scale has unknown dtype value 99"));
}

TEST_CASE("C ABI: linear rejects null arguments", "[capi]") {
  std::uint16_t fake[16];
  marlinrt_matrix x{fake, MARLINRT_BF16, 1, 16, 0};
  marlinrt_matrix y{fake, MARLINRT_BF16, 1, 16, 0};
  CHECK(marlinrt_linear(nullptr, nullptr, nullptr, &y) == MARLINRT_INVALID_ARGUMENT);
  CHECK_THAT(last_error(), Catch::Contains("x is NULL"));
  CHECK(marlinrt_linear(nullptr, &x, nullptr, &y) == MARLINRT_INVALID_ARGUMENT);
  CHECK_THAT(last_error(), Catch::Contains("linear is NULL"));
  marlinrt_linear_destroy(nullptr);  // allowed, does nothing
}

TEST_CASE("C ABI: prebuild and JIT counters", "[capi]") {
  CHECK(marlinrt_prebuild(nullptr) == MARLINRT_INVALID_ARGUMENT);
  CHECK_THAT(last_error(), Catch::Contains("key_text is NULL"));
  CHECK(marlinrt_prebuild("repack_weights/sm_42") == MARLINRT_INVALID_ARGUMENT);
  CHECK_THAT(last_error(), Catch::Contains("sm_42"));
  CHECK(marlinrt_prebuild("gemm/e2m1/g16/bf16/dense") == MARLINRT_INVALID_ARGUMENT);
  CHECK_THAT(last_error(), Catch::Contains("invalid kernel key"));

  CHECK(marlinrt_jit_stats(nullptr) == MARLINRT_INVALID_ARGUMENT);
  CHECK_THAT(last_error(), Catch::Contains("out is NULL"));
  REQUIRE(marlinrt_reset_jit_stats() == MARLINRT_OK);
  marlinrt_jit_stats_t s;
  std::memset(&s, 0xff, sizeof(s));
  REQUIRE(marlinrt_jit_stats(&s) == MARLINRT_OK);
  const marlinrt::JitStats cpp = marlinrt::jit_stats();
  CHECK(s.compiles == cpp.compiles);
  CHECK(s.disk_hits == cpp.disk_hits);
  CHECK(s.misses == cpp.misses);
  CHECK(s.compile_seconds == cpp.compile_seconds);
}

TEST_CASE("C ABI: the last error is per thread and survives successful calls", "[capi]") {
  REQUIRE(marlinrt_prebuild("not-a-key") == MARLINRT_INVALID_ARGUMENT);
  const std::string mine = last_error();
  REQUIRE_THAT(mine, Catch::Contains("not-a-key"));

  std::string other_before, other_after;
  std::thread t([&] {
    other_before = marlinrt_last_error();
    marlinrt_jit_stats(nullptr);
    other_after = marlinrt_last_error();
  });
  t.join();
  CHECK(other_before.empty());
  CHECK_THAT(other_after, Catch::Contains("marlinrt_jit_stats"));
  CHECK(last_error() == mine);  // untouched by the other thread

  marlinrt_backend_choice c{};
  REQUIRE(marlinrt_select_fp4_backend(80, &c) == MARLINRT_OK);
  CHECK(last_error() == mine);  // and by a successful call
}

TEST_CASE("C ABI: a layer prepared and run through the C functions", "[capi][gpu]") {
  MARLINRT_REQUIRE_GPU();
  // Every weight 1.0 (E2M1 code 2, block scale E4M3 0x38 = 1, global scale 1)
  // and x all ones: every output is exactly K.
  constexpr std::int64_t kN = 256, kK = 256, kM = 4;
  std::vector<std::uint8_t> weight(kN * kK / 2, 0x22);
  std::vector<std::uint8_t> scale(kN * kK / 16, 0x38);
  std::vector<std::uint16_t> x(kM * kK, 0x3f80);  // bf16 1.0
  void *d_weight = nullptr, *d_scale = nullptr, *d_x = nullptr, *d_y = nullptr;
  REQUIRE(cudaMalloc(&d_weight, weight.size()) == cudaSuccess);
  REQUIRE(cudaMalloc(&d_scale, scale.size()) == cudaSuccess);
  REQUIRE(cudaMalloc(&d_x, x.size() * 2) == cudaSuccess);
  REQUIRE(cudaMalloc(&d_y, kM * kN * 2) == cudaSuccess);
  REQUIRE(cudaMemcpy(d_weight, weight.data(), weight.size(), cudaMemcpyHostToDevice) ==
          cudaSuccess);
  REQUIRE(cudaMemcpy(d_scale, scale.data(), scale.size(), cudaMemcpyHostToDevice) == cudaSuccess);
  REQUIRE(cudaMemcpy(d_x, x.data(), x.size() * 2, cudaMemcpyHostToDevice) == cudaSuccess);

  marlinrt_nvfp4_linear_desc desc{};
  desc.weight = {d_weight, MARLINRT_U8, kN, kK / 2, 0};
  desc.weight_scale = {d_scale, MARLINRT_E4M3, kN, kK / 16, 0};
  desc.weight_scale_2 = 1.0f;
  marlinrt_linear_t* layer = nullptr;
  const marlinrt_status prepared =
      marlinrt_prepare_nvfp4_linear(&desc, MARLINRT_BF16, nullptr, &layer);
  INFO(last_error());
  REQUIRE(prepared == MARLINRT_OK);
  REQUIRE(layer != nullptr);

  marlinrt_matrix xm{d_x, MARLINRT_BF16, kM, kK, 0};
  marlinrt_matrix ym{d_y, MARLINRT_BF16, kM, kN, 0};
  const marlinrt_status ran = marlinrt_linear(nullptr, &xm, layer, &ym);
  INFO(last_error());
  REQUIRE(ran == MARLINRT_OK);
  std::vector<std::uint16_t> y(kM * kN);
  REQUIRE(cudaMemcpy(y.data(), d_y, y.size() * 2, cudaMemcpyDeviceToHost) == cudaSuccess);
  for (std::uint16_t v : y) REQUIRE(v == 0x4380);  // bf16 256.0

  marlinrt_matrix wrong = ym;
  wrong.cols = kN + 1;
  CHECK(marlinrt_linear(nullptr, &xm, layer, &wrong) == MARLINRT_INVALID_ARGUMENT);
  CHECK(!last_error().empty());

  marlinrt_linear_destroy(layer);
  cudaFree(d_weight);
  cudaFree(d_scale);
  cudaFree(d_x);
  cudaFree(d_y);
}
