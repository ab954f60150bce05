// Bad inputs to prepare_nvfp4_linear and linear: each must throw marlinrt::Error with status
// invalid_argument (or unsupported) and a message that names the problem.
#include <catch2/catch.hpp>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "marlinrt/error.hpp"
#include "marlinrt/linear.hpp"
#include "tests/cuda_test_support.hpp"
#include "tests/gpu_guard.hpp"
#include "tests/nvfp4_reference.hpp"

using namespace marlinrt;
using namespace marlinrt::test;

namespace {

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// Matches an Error with status invalid_argument/unsupported whose message contains, case
// insensitively, every group; a group "a|b" is satisfied by either alternative.
class ErrorNaming : public Catch::MatcherBase<Error> {
 public:
  explicit ErrorNaming(std::vector<std::string> groups) : groups_(std::move(groups)) {}

  bool match(const Error& e) const override {
    if (e.status() != Status::invalid_argument && e.status() != Status::unsupported) return false;
    const std::string message = lowercase(e.what());
    for (const std::string& group : groups_) {
      bool any = false;
      std::stringstream alternatives(group);
      for (std::string word; std::getline(alternatives, word, '|');) {
        any |= message.find(lowercase(word)) != std::string::npos;
      }
      if (!any) return false;
    }
    return true;
  }

  std::string describe() const override {
    std::string text = "is an invalid_argument/unsupported Error mentioning";
    for (const std::string& group : groups_) text += " [" + group + "]";
    return text;
  }

 private:
  std::vector<std::string> groups_;
};

}  // namespace

// Catch prints the matched exception with this.
namespace Catch {
template <>
struct StringMaker<marlinrt::Error> {
  static std::string convert(const marlinrt::Error& e) {
    return std::string(status_name(e.status())) + ": " + e.what();
  }
};
}  // namespace Catch

TEST_CASE("prepare_nvfp4_linear rejects bad layers with a message naming the problem",
          "[dense][gpu]") {
  MARLINRT_REQUIRE_GPU();
  const std::uint64_t seed = fresh_test_seed();
  INFO("seed " << seed);
  CudaStream stream;
  const std::int64_t n = 256, k = 512;
  HostNvfp4Weights host = random_exporter_weights(n, k, seed, 0.02);
  const DeviceNvfp4Layer layer = upload_layer(host);
  // Big enough for every mis-shaped view below.
  DeviceBuffer spare(static_cast<std::size_t>(n * k));
  const auto prepare = [&](const Nvfp4Linear& l, DType dtype = DType::bf16) {
    return prepare_nvfp4_linear(l, dtype, stream.get());
  };

  // The untouched layer is accepted: the failures below come from the one change each makes.
  CHECK_NOTHROW(prepare(layer.view()));

  Nvfp4Linear bad = layer.view();
  bad.weight.data = nullptr;
  CHECK_THROWS_MATCHES(prepare(bad), Error, ErrorNaming({"weight", "null"}));

  bad = layer.view();
  bad.weight_scale.data = nullptr;
  CHECK_THROWS_MATCHES(prepare(bad), Error, ErrorNaming({"weight_scale", "null"}));

  bad = layer.view();
  bad.weight.dtype = DType::e4m3;
  CHECK_THROWS_MATCHES(prepare(bad), Error, ErrorNaming({"weight", "u8"}));

  bad = layer.view();
  bad.weight_scale.dtype = DType::u8;
  CHECK_THROWS_MATCHES(prepare(bad), Error, ErrorNaming({"weight_scale", "e4m3"}));

  bad = layer.view();
  bad.weight_scale.cols = k / 16 + 1;
  bad.weight_scale.data = spare.data();
  CHECK_THROWS_MATCHES(prepare(bad), Error, ErrorNaming({"weight_scale", "32|33"}));

  bad = layer.view();
  bad.weight_scale.rows = n - 1;
  CHECK_THROWS_MATCHES(prepare(bad), Error, ErrorNaming({"weight_scale|rows", "255|256"}));

  bad = layer.view();  // weight cols != K/2 for the K the scales imply
  bad.weight.cols = k / 2 + 8;
  bad.weight.data = spare.data();
  CHECK_THROWS_MATCHES(prepare(bad), Error, ErrorNaming({"weight", "264|528|32|33"}));

  bad = layer.view();
  bad.weight.row_stride = k / 2 - 16;  // a stride shorter than a row
  CHECK_THROWS_MATCHES(prepare(bad), Error, ErrorNaming({"stride"}));

  bad = layer.view();  // K = 24: not a whole number of 16-element blocks
  bad.weight.cols = 12;
  bad.weight_scale.cols = 1;
  CHECK_THROWS_MATCHES(prepare(bad), Error, ErrorNaming({"16", "24|12"}));

  CHECK_THROWS_MATCHES(prepare(layer.view(), DType::f32), Error, ErrorNaming({"f32", "bf16"}));
  CHECK_THROWS_MATCHES(prepare(layer.view(), DType::u8), Error, ErrorNaming({"u8", "bf16"}));

  // A NaN block scale (0x7F / 0xFF) anywhere is refused at prepare.
  for (const std::uint8_t nan_byte : {std::uint8_t{0x7F}, std::uint8_t{0xFF}}) {
    HostNvfp4Weights with_nan = host;
    with_nan.scales[with_nan.scales.size() / 2 + 3] = nan_byte;
    const DeviceNvfp4Layer nan_layer = upload_layer(with_nan);
    INFO("NaN byte " << int(nan_byte));
    CHECK_THROWS_MATCHES(prepare(nan_layer.view()), Error, ErrorNaming({"nan"}));
  }
  check_cuda(cudaStreamSynchronize(stream.get()), "stream after rejected prepares");
}

TEST_CASE("linear rejects bad activations and outputs with a message naming the problem",
          "[dense][gpu]") {
  MARLINRT_REQUIRE_GPU();
  const std::uint64_t seed = fresh_test_seed();
  INFO("seed " << seed);
  CudaStream stream;
  const std::int64_t n = 256, k = 512, m = 4;
  const PreparedTestLayer prepared =
      prepare_host_layer(random_exporter_weights(n, k, seed, 0.02), DType::bf16, stream.get());
  const std::vector<std::uint16_t> x_host =
      random_half_matrix(DType::bf16, m, k + 8, k + 8, seed, 1.0);
  DeviceBuffer x_dev(x_host.size() * sizeof(std::uint16_t) + 64);
  x_dev.upload(x_host);
  DeviceBuffer y_dev(static_cast<std::size_t>((m + 1) * (n + 8)) * sizeof(std::uint16_t));
  const MatrixView x{x_dev.data(), DType::bf16, m, k, 0};
  const MutableMatrixView y{y_dev.data(), DType::bf16, m, n, 0};
  const auto run = [&](MatrixView xv, MutableMatrixView yv) {
    linear(stream.get(), xv, prepared.linear, yv);
  };

  CHECK_NOTHROW(run(x, y));
  check_cuda(cudaStreamSynchronize(stream.get()), "valid launch");

  MatrixView bx = x;
  bx.data = nullptr;
  CHECK_THROWS_MATCHES(run(bx, y), Error, ErrorNaming({"null"}));

  MutableMatrixView by = y;
  by.data = nullptr;
  CHECK_THROWS_MATCHES(run(x, by), Error, ErrorNaming({"null"}));

  bx = x;  // 2 bytes past a 16-byte boundary
  bx.data = x_dev.as<char>() + 2;
  CHECK_THROWS_MATCHES(run(bx, y), Error, ErrorNaming({"align"}));

  bx = x;  // an odd row stride misaligns every other row
  bx.row_stride = k + 1;
  CHECK_THROWS_MATCHES(run(bx, y), Error, ErrorNaming({"stride|align"}));

  bx = x;
  bx.row_stride = k - 8;
  CHECK_THROWS_MATCHES(run(bx, y), Error, ErrorNaming({"stride"}));

  bx = x;
  bx.dtype = DType::f16;  // prepared for bf16
  CHECK_THROWS_MATCHES(run(bx, MutableMatrixView{y.data, DType::f16, m, n, 0}), Error,
                       ErrorNaming({"bf16"}));

  bx = x;
  bx.dtype = DType::f32;
  CHECK_THROWS_MATCHES(run(bx, y), Error, ErrorNaming({"f32|dtype"}));

  by = y;
  by.dtype = DType::f16;
  CHECK_THROWS_MATCHES(run(x, by), Error, ErrorNaming({"bf16|dtype"}));

  bx = x;
  bx.cols = k + 8;
  CHECK_THROWS_MATCHES(run(bx, y), Error, ErrorNaming({"512|520"}));

  bx = x;
  bx.cols = k - 16;
  CHECK_THROWS_MATCHES(run(bx, y), Error, ErrorNaming({"512|496"}));

  by = y;
  by.rows = m + 1;
  CHECK_THROWS_MATCHES(run(x, by), Error, ErrorNaming({"y|output", "4|5|rows"}));

  by = y;
  by.cols = n + 8;
  CHECK_THROWS_MATCHES(run(x, by), Error, ErrorNaming({"256|264"}));

  by = y;
  by.row_stride = n - 8;
  CHECK_THROWS_MATCHES(run(x, by), Error, ErrorNaming({"stride"}));

  bx = x;
  bx.rows = -1;
  CHECK_THROWS_MATCHES(run(bx, MutableMatrixView{y.data, DType::bf16, -1, n, 0}), Error,
                       ErrorNaming({"-1|rows|negative"}));

  check_cuda(cudaStreamSynchronize(stream.get()), "stream after rejected launches");
}

TEST_CASE("a prepared weight is refused on another device", "[dense][gpu]") {
  MARLINRT_REQUIRE_GPU();
  if (cuda_device_count() < 2) {
    WARN("skipped: needs two GPUs");
    return;
  }
  const std::uint64_t seed = fresh_test_seed();
  INFO("seed " << seed);
  const std::int64_t n = 128, k = 256, m = 2;
  check_cuda(cudaSetDevice(0), "cudaSetDevice(0)");
  std::optional<PreparedTestLayer> prepared;
  {
    CudaStream stream0;
    prepared.emplace(
        prepare_host_layer(random_exporter_weights(n, k, seed, 0.02), DType::bf16, stream0.get()));
  }
  CHECK(prepared->linear.device() == 0);
  check_cuda(cudaSetDevice(1), "cudaSetDevice(1)");
  {
    CudaStream stream1;
    DeviceBuffer x_dev(static_cast<std::size_t>(m * k) * sizeof(std::uint16_t));
    DeviceBuffer y_dev(static_cast<std::size_t>(m * n) * sizeof(std::uint16_t));
    x_dev.fill_bytes(0);
    CHECK_THROWS_MATCHES(
        linear(stream1.get(), MatrixView{x_dev.data(), DType::bf16, m, k, 0}, prepared->linear,
               MutableMatrixView{y_dev.data(), DType::bf16, m, n, 0}),
        Error, ErrorNaming({"device"}));
  }
  check_cuda(cudaSetDevice(0), "cudaSetDevice(0)");
}
