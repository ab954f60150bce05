#include "tests/cuda_test_support.hpp"

#include <stdexcept>
#include <string>
#include <utility>

namespace marlinrt::test {

void check_cuda(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  throw std::runtime_error(std::string(what) + " failed: " + cudaGetErrorName(status) + " (" +
                           cudaGetErrorString(status) + ")");
}

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return count;
}

DeviceBuffer::DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
  if (bytes > 0) check_cuda(cudaMalloc(&data_, bytes), "cudaMalloc");
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    if (data_) cudaFree(data_);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

DeviceBuffer::~DeviceBuffer() {
  if (data_) cudaFree(data_);
}

void DeviceBuffer::upload(const void* source, std::size_t bytes, std::size_t offset) {
  if (offset + bytes > bytes_) throw std::out_of_range("DeviceBuffer::upload past the end");
  if (bytes == 0) return;
  check_cuda(cudaMemcpy(static_cast<char*>(data_) + offset, source, bytes, cudaMemcpyHostToDevice),
             "cudaMemcpy host->device");
}

void DeviceBuffer::download(void* destination, std::size_t bytes, std::size_t offset) const {
  if (offset + bytes > bytes_) throw std::out_of_range("DeviceBuffer::download past the end");
  if (bytes == 0) return;
  check_cuda(cudaMemcpy(destination, static_cast<const char*>(data_) + offset, bytes,
                        cudaMemcpyDeviceToHost),
             "cudaMemcpy device->host");
}

void DeviceBuffer::fill_bytes(unsigned char value) {
  if (bytes_ == 0) return;
  check_cuda(cudaMemset(data_, value, bytes_), "cudaMemset");
}

CudaStream::CudaStream() {
  cudaStream_t stream = nullptr;
  // A blocking stream: ordered with the plain cudaMemcpy/cudaMemset calls of the helpers above.
  check_cuda(cudaStreamCreate(&stream), "cudaStreamCreate");
  stream_ = stream;
}

CudaStream::~CudaStream() {
  if (stream_) cudaStreamDestroy(stream_);
}

void CudaStream::synchronize() const {
  check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
}

Nvfp4Linear DeviceNvfp4Layer::view() const {
  Nvfp4Linear layer;
  layer.weight = {weight.data(), DType::u8, n, k / 2, 0};
  layer.weight_scale = {weight_scale.data(), DType::e4m3, n, k / 16, 0};
  layer.weight_scale_2 = weight_scale_2;
  layer.bias = bias.data();
  return layer;
}

DeviceNvfp4Layer upload_layer(const HostNvfp4Weights& weights,
                              const std::vector<std::uint16_t>* bias) {
  DeviceNvfp4Layer layer;
  layer.n = weights.n;
  layer.k = weights.k;
  layer.weight_scale_2 = weights.weight_scale_2;
  layer.weight = DeviceBuffer(weights.packed.size());
  layer.weight.upload(weights.packed);
  layer.weight_scale = DeviceBuffer(weights.scales.size());
  layer.weight_scale.upload(weights.scales);
  if (bias) {
    if (static_cast<std::int64_t>(bias->size()) != weights.n) {
      throw std::invalid_argument("upload_layer: bias must have n elements");
    }
    layer.bias = DeviceBuffer(bias->size() * sizeof(std::uint16_t));
    layer.bias.upload(*bias);
  }
  return layer;
}

PreparedTestLayer prepare_host_layer(const HostNvfp4Weights& weights, DType dtype, Stream stream,
                                     const std::vector<std::uint16_t>* bias) {
  DeviceNvfp4Layer layer = upload_layer(weights, bias);
  PreparedLinear prepared = prepare_nvfp4_linear(layer.view(), dtype, stream);
  check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize after prepare");
  return PreparedTestLayer{std::move(layer.bias), std::move(prepared)};
}

}  // namespace marlinrt::test
