// Small RAII helpers over the CUDA runtime for the GPU tests: device buffers, a stream, and a
// host NVFP4 layer uploaded in checkpoint layout (what prepare_nvfp4_linear consumes).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "marlinrt/linear.hpp"
#include "tests/nvfp4_reference.hpp"

namespace marlinrt::test {

// Throws std::runtime_error naming `what` and the CUDA error when `status` is not cudaSuccess.
void check_cuda(cudaError_t status, const char* what);

// Number of CUDA devices the runtime sees (0 when none or no driver).
int cuda_device_count();

// Device memory owned by one object (move-only). Allocated on the current device.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes);
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer();

  void* data() const noexcept { return data_; }
  std::size_t bytes() const noexcept { return bytes_; }
  template <typename T>
  T* as() const noexcept {
    return static_cast<T*>(data_);
  }

  // Synchronous copies (bounds-checked against the allocation).
  void upload(const void* source, std::size_t bytes, std::size_t offset = 0);
  void download(void* destination, std::size_t bytes, std::size_t offset = 0) const;
  template <typename T>
  void upload(const std::vector<T>& source) {
    upload(source.data(), source.size() * sizeof(T));
  }
  template <typename T>
  std::vector<T> download_vector(std::size_t count) const {
    std::vector<T> out(count);
    download(out.data(), count * sizeof(T));
    return out;
  }
  // Every byte set to `value` (0xFF poisons f16/bf16 outputs with NaN).
  void fill_bytes(unsigned char value);

 private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

// A stream on the current device that synchronizes with the legacy default stream, so that
// the synchronous copies and memsets of DeviceBuffer are ordered with work launched on it.
class CudaStream {
 public:
  CudaStream();
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  ~CudaStream();

  Stream get() const noexcept { return stream_; }
  void synchronize() const;

 private:
  Stream stream_ = nullptr;
};

// A HostNvfp4Weights on the device in checkpoint layout, plus an optional bias (16-bit bits in
// the activation dtype). view() is what prepare_nvfp4_linear takes.
struct DeviceNvfp4Layer {
  DeviceBuffer weight;
  DeviceBuffer weight_scale;
  DeviceBuffer bias;
  std::int64_t n = 0;
  std::int64_t k = 0;
  float weight_scale_2 = 1.0f;

  Nvfp4Linear view() const;
};

DeviceNvfp4Layer upload_layer(const HostNvfp4Weights& weights,
                              const std::vector<std::uint16_t>* bias = nullptr);

// A prepared layer plus the bias buffer it may point to (the API does not say that prepare
// copies the bias, so it lives as long as the prepared weights).
struct PreparedTestLayer {
  DeviceBuffer bias;
  PreparedLinear linear;
};

// Uploads, prepares for `dtype` on `stream`, waits, and frees the checkpoint copies of weight
// and scales (prepared weights own their memory, so later launches must not need them).
PreparedTestLayer prepare_host_layer(const HostNvfp4Weights& weights, DType dtype, Stream stream,
                                     const std::vector<std::uint16_t>* bias = nullptr);

}  // namespace marlinrt::test
