// Dense NVFP4 linear layers: prepare once, launch many times.
#pragma once

#include <cstdint>
#include <memory>

#include "marlinrt/dtype.hpp"
#include "marlinrt/runtime.hpp"

namespace marlinrt {

// One ModelOpt NVFP4 linear layer with logical weight [N, K], on the device:
//   weight         u8   [N, K/2]  (element 2i in the low nibble)
//   weight_scale   e4m3 [N, K/16]
//   weight_scale_2 the fp32 global scale (host value)
//   bias           optional, activation dtype, [N] (device pointer or null)
struct Nvfp4Linear {
  MatrixView weight;
  MatrixView weight_scale;
  float weight_scale_2 = 1.0f;
  const void* bias = nullptr;
};

// Weights in the kernel's layout, owning their device memory (RAII, move-only).
class PreparedLinear {
 public:
  struct Impl;
  PreparedLinear(PreparedLinear&&) noexcept;
  PreparedLinear& operator=(PreparedLinear&&) noexcept;
  ~PreparedLinear();

  std::int64_t n() const noexcept;  // logical output features
  std::int64_t k() const noexcept;  // logical input features
  DType activation_dtype() const noexcept;
  int device() const noexcept;
  const Impl& impl() const noexcept { return *impl_; }

  explicit PreparedLinear(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

// Repacks and validates on `stream` (the current device must own the tensors).
// Throws Error on bad shapes/dtypes, NaN scales or a GPU below SM80.
PreparedLinear prepare_nvfp4_linear(const Nvfp4Linear& layer, DType activation_dtype,
                                    Stream stream = nullptr);

struct LinearOptions {
  bool deterministic = true;  // bitwise-identical results on repeated calls
};

// y[M, N] = x[M, K] * W^T (+ bias), x and y in the prepared activation dtype.
void linear(Stream stream, MatrixView x, const PreparedLinear& w, MutableMatrixView y,
            const LinearOptions& options = {});

}  // namespace marlinrt
