// Device memory owned by RAII (cuMemAlloc/cuMemFree), move-only.
#pragma once

#include <cuda.h>

#include <cstddef>
#include <cstdint>

namespace marlinrt::detail {

class DeviceBuffer {
 public:
  DeviceBuffer() noexcept = default;
  // Allocates `bytes` on the current device (see current_device()). Zero bytes allocates
  // nothing. Throws Error(no_driver / no_device / cuda_error).
  explicit DeviceBuffer(std::size_t bytes);
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { reset(); }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  CUdeviceptr ptr() const noexcept { return ptr_; }
  void* data() const noexcept { return reinterpret_cast<void*>(static_cast<std::uintptr_t>(ptr_)); }
  int device() const noexcept { return device_; }  // ordinal; -1 when empty

  // Synchronous copies of `bytes` (at most size()) from/to host memory.
  void copy_from_host(const void* source, std::size_t bytes);
  void copy_to_host(void* destination, std::size_t bytes) const;

  // Frees the memory (in the context that allocated it); never throws.
  void reset() noexcept;

 private:
  CUdeviceptr ptr_ = 0;
  std::size_t size_ = 0;
  CUcontext context_ = nullptr;
  int device_ = -1;
};

}  // namespace marlinrt::detail
