// prepare_nvfp4_linear: validate a ModelOpt NVFP4 layer and repack it on the GPU.
#include <cuda.h>

#include <algorithm>
#include <cmath>

#include "kernel_templates/repack_params.h"
#include "marlinrt/backend.hpp"
#include "marlinrt/linear.hpp"
#include "runtime/cuda_check.hpp"
#include "runtime/dense_dispatch.hpp"
#include "runtime/device_pointer_checks.hpp"
#include "runtime/driver.hpp"
#include "runtime/fail.hpp"
#include "runtime/kernel_provider.hpp"
#include "runtime/launch.hpp"
#include "runtime/nvfp4_layout.hpp"
#include "runtime/prepared_linear.hpp"

namespace marlinrt {

using namespace detail;

PreparedLinear::PreparedLinear(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PreparedLinear::PreparedLinear(PreparedLinear&&) noexcept = default;
PreparedLinear& PreparedLinear::operator=(PreparedLinear&&) noexcept = default;
PreparedLinear::~PreparedLinear() = default;
std::int64_t PreparedLinear::n() const noexcept { return impl_->n; }
std::int64_t PreparedLinear::k() const noexcept { return impl_->k; }
DType PreparedLinear::activation_dtype() const noexcept { return impl_->activation; }
int PreparedLinear::device() const noexcept { return impl_->device; }

namespace {

// A grid for the grid-stride repack kernels.
unsigned repack_blocks(std::int64_t items, const DeviceInfo& dev) {
  return static_cast<unsigned>(
      std::clamp<std::int64_t>((items + 255) / 256, 1, std::int64_t{dev.sm_count} * 8));
}

}  // namespace

PreparedLinear prepare_nvfp4_linear(const Nvfp4Linear& layer, DType act, Stream stream) {
  if (act != DType::f16 && act != DType::bf16) {
    fail(Status::invalid_argument, "activation dtype {} is not supported (expected f16 or bf16)",
         dtype_name(act));
  }
  const DeviceInfo& dev = current_device();
  const BackendChoice backend = select_fp4_backend(dev.compute_capability);
  if (!backend.marlin_allowed) {
    fail(Status::unsupported, "device {} ({}): {}", dev.ordinal, dev.name, backend.reason);
  }
  const std::int64_t n = layer.weight.rows, k = layer.weight.cols * 2;
  if (n <= 0 || k <= 0) {
    fail(Status::invalid_argument, "weight has shape [{}, {}]: expected [N, K/2] with N, K > 0",
         layer.weight.rows, layer.weight.cols);
  }
  if (k % 16 != 0) {
    fail(Status::invalid_argument,
         "K = {} (weight has {} bytes per row) is not a multiple of 16, the NVFP4 block size", k,
         layer.weight.cols);
  }
  if (k > (1 << 30) || n > (1 << 30)) {
    fail(Status::invalid_argument, "weight [{}, {}] is too large (N, K <= 2^30)", n, k);
  }
  check_device_matrix("weight", layer.weight, DType::u8, n, k / 2, dev.ordinal);
  check_device_matrix("weight_scale", layer.weight_scale, DType::e4m3, n, k / 16, dev.ordinal);
  if (!std::isfinite(layer.weight_scale_2)) {
    fail(Status::invalid_argument, "weight_scale_2 is {}: the global scale must be finite",
         layer.weight_scale_2);
  }

  auto impl = std::make_unique<PreparedLinear::Impl>();
  impl->n = n;
  impl->k = k;
  impl->n_padded = padded_n(n);
  impl->k_padded = padded_k(k);
  impl->activation = act;
  impl->device = dev.ordinal;
  impl->global_scale = std::ldexp(layer.weight_scale_2, 7);
  impl->weights = DeviceBuffer(static_cast<std::size_t>(repacked_weight_bytes(n, k)));
  impl->scales = DeviceBuffer(static_cast<std::size_t>(repacked_scale_bytes(n, k)));
  DeviceBuffer nan_count(sizeof(int));
  const auto& drv = driver();
  check(drv.memset_d32_async(nan_count.ptr(), 0, 1, stream), "clearing the NaN counter");

  const auto keys = prepare_keys(dev.compute_capability);
  {
    kern::RepackWeightsParams p{};
    p.weight = static_cast<const unsigned char*>(layer.weight.data);
    p.row_stride = layer.weight.stride();
    p.scales = static_cast<const unsigned char*>(layer.weight_scale.data);
    p.scale_row_stride = layer.weight_scale.stride();
    p.n = static_cast<int>(n);
    p.k = static_cast<int>(k);
    p.n_padded = static_cast<int>(impl->n_padded);
    p.k_padded = static_cast<int>(impl->k_padded);
    p.bf16 = act == DType::bf16 ? 1 : 0;
    p.out = static_cast<unsigned*>(impl->weights.data());
    launch(get_kernel(keys[0], stream), stream,
           {repack_blocks(repacked_weight_bytes(n, k) / 4, dev)}, {256}, 0, &p);
  }
  {
    kern::RepackScalesParams p{};
    p.scales = static_cast<const unsigned char*>(layer.weight_scale.data);
    p.row_stride = layer.weight_scale.stride();
    p.n = static_cast<int>(n);
    p.k = static_cast<int>(k);
    p.n_padded = static_cast<int>(impl->n_padded);
    p.k_padded = static_cast<int>(impl->k_padded);
    p.out = static_cast<unsigned char*>(impl->scales.data());
    p.nan_count = static_cast<int*>(nan_count.data());
    launch(get_kernel(keys[1], stream), stream, {repack_blocks(repacked_scale_bytes(n, k), dev)},
           {256}, 0, &p);
  }
  if (layer.bias != nullptr) {
    const MatrixView bias{layer.bias, act, 1, n, 0};
    check_device_matrix("bias", bias, act, 1, n, dev.ordinal);
    impl->bias = DeviceBuffer(static_cast<std::size_t>(n) * dtype_size(act));
    check(drv.memcpy_dtod_async(impl->bias.ptr(), reinterpret_cast<CUdeviceptr>(layer.bias),
                                impl->bias.size(), stream),
          "copying the bias");
  }
  int nans = 0;
  check(drv.memcpy_dtoh_async(&nans, nan_count.ptr(), sizeof nans, stream),
        "reading the NaN counter");
  check(drv.stream_synchronize(stream), "waiting for the weight repack");
  if (nans != 0) {
    fail(Status::invalid_argument,
         "weight_scale holds {} NaN value(s) (E4M3 bytes 0x7F/0xFF): the checkpoint is corrupt",
         nans);
  }
  return PreparedLinear(std::move(impl));
}

}  // namespace marlinrt
