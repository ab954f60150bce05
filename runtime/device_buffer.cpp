#include "runtime/device_buffer.hpp"

#include <utility>

#include <fmt/format.h>

#include "runtime/cuda_check.hpp"
#include "runtime/driver.hpp"
#include "runtime/fail.hpp"

namespace marlinrt::detail {

DeviceBuffer::DeviceBuffer(std::size_t bytes) {
  const DeviceInfo& device = current_device();
  if (bytes == 0) return;
  const Driver& d = driver();
  const CUresult result = d.mem_alloc(&ptr_, bytes);
  if (result != CUDA_SUCCESS) {
    ptr_ = 0;
    check(result,
          fmt::format("allocating {} bytes on device {} ({})", bytes, device.ordinal, device.name));
  }
  size_ = bytes;
  context_ = device.context;
  device_ = device.ordinal;
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : ptr_(std::exchange(other.ptr_, 0)),
      size_(std::exchange(other.size_, 0)),
      context_(std::exchange(other.context_, nullptr)),
      device_(std::exchange(other.device_, -1)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    reset();
    ptr_ = std::exchange(other.ptr_, 0);
    size_ = std::exchange(other.size_, 0);
    context_ = std::exchange(other.context_, nullptr);
    device_ = std::exchange(other.device_, -1);
  }
  return *this;
}

void DeviceBuffer::reset() noexcept {
  if (ptr_ == 0) return;
  if (!Driver::probe().usable) return;  // cannot happen: the memory came from the driver
  const Driver& d = Driver::get();
  // cuMemFree acts in the current context: switch to the allocating one if needed.
  CUcontext previous = nullptr;
  d.ctx_get_current(&previous);
  if (previous != context_) d.ctx_set_current(context_);
  d.mem_free(ptr_);
  if (previous != context_) d.ctx_set_current(previous);
  ptr_ = 0;
  size_ = 0;
  context_ = nullptr;
  device_ = -1;
}

void DeviceBuffer::copy_from_host(const void* source, std::size_t bytes) {
  if (bytes > size_) {
    fail(Status::invalid_argument, "copying {} bytes into a device buffer of {} bytes", bytes,
         size_);
  }
  if (bytes == 0) return;
  check(driver().memcpy_htod(ptr_, source, bytes),
        fmt::format("copying {} bytes from the host to device {}", bytes, device_));
}

void DeviceBuffer::copy_to_host(void* destination, std::size_t bytes) const {
  if (bytes > size_) {
    fail(Status::invalid_argument, "copying {} bytes out of a device buffer of {} bytes", bytes,
         size_);
  }
  if (bytes == 0) return;
  check(driver().memcpy_dtoh(destination, ptr_, bytes),
        fmt::format("copying {} bytes from device {} to the host", bytes, device_));
}

}  // namespace marlinrt::detail
