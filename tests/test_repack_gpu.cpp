// The GPU preparation kernels produce exactly the host reference layout.
#include <catch2/catch.hpp>

#include <random>

#include "marlinrt/error.hpp"
#include "marlinrt/linear.hpp"
#include "runtime/nvfp4_layout.hpp"
#include "runtime/prepared_linear.hpp"
#include "tests/cuda_test_support.hpp"
#include "tests/gpu_guard.hpp"

using namespace marlinrt;

TEST_CASE("GPU repack of weights and scales matches the host reference", "[repack][gpu]") {
  MARLINRT_REQUIRE_GPU();
  std::mt19937 rng(std::random_device{}());
  for (DType act : {DType::bf16, DType::f16})
    for (auto [n, k] :
         {std::pair<std::int64_t, std::int64_t>{64, 64}, {1856, 672}, {72, 48}, {300, 1040}}) {
      INFO(dtype_name(act) << " n " << n << " k " << k);
      std::vector<std::uint8_t> weight(static_cast<std::size_t>(n * k / 2));
      std::vector<std::uint8_t> scales(static_cast<std::size_t>(n * k / 16));
      for (auto& b : weight) b = static_cast<std::uint8_t>(rng());
      for (auto& b : scales) {
        do b = static_cast<std::uint8_t>(rng());
        while ((b & 0x7F) == 0x7F);  // NaN bytes are rejected, tested elsewhere
      }
      const test::DeviceNvfp4Layer layer = test::upload_layer({n, k, weight, scales, 0.5f});
      const PreparedLinear prepared = prepare_nvfp4_linear(layer.view(), act, nullptr);
      const auto& impl = prepared.impl();
      std::vector<std::uint32_t> got_w(impl.weights.size() / 4);
      impl.weights.copy_to_host(got_w.data(), impl.weights.size());
      std::vector<std::uint8_t> got_s(impl.scales.size());
      impl.scales.copy_to_host(got_s.data(), impl.scales.size());
      CHECK(got_w == detail::repack_weights_host(weight, k / 2, scales, k / 16, n, k, act));
      CHECK(got_s == detail::repack_scales_host(scales, k / 16, n, k));
    }
}

TEST_CASE("NaN scales are rejected at prepare time", "[repack][gpu]") {
  MARLINRT_REQUIRE_GPU();
  const std::int64_t n = 64, k = 64;
  std::vector<std::uint8_t> weight(n * k / 2, 0x11), scales(n * k / 16, 0x38);
  scales[37] = 0xFF;
  const test::DeviceNvfp4Layer layer = test::upload_layer({n, k, weight, scales});
  try {
    prepare_nvfp4_linear(layer.view(), DType::f16, nullptr);
    FAIL("a NaN scale was accepted");
  } catch (const Error& e) {
    CHECK(e.status() == Status::invalid_argument);
    CHECK_THAT(e.what(), Catch::Contains("1 NaN"));
  }
}
