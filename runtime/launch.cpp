#include "runtime/launch.hpp"

#include <utility>

#include <fmt/format.h>

#include "runtime/cuda_check.hpp"
#include "runtime/driver.hpp"
#include "runtime/fail.hpp"

namespace marlinrt::detail {
namespace {

[[noreturn]] void launch_failed(const LoadedKernel& kernel, CUresult result, LaunchDims grid,
                                LaunchDims block, unsigned shared_bytes, unsigned cluster_x) {
  throw_cuda_error(
      result, fmt::format("launching kernel {} on device {} (grid {}x{}x{}, block "
                          "{}x{}x{}, {} B dynamic shared memory, clusters of {})",
                          kernel.key.to_string(), kernel.device_ordinal, grid.x, grid.y, grid.z,
                          block.x, block.y, block.z, shared_bytes, cluster_x));
}

}  // namespace

LaunchConfigEx::LaunchConfigEx(LaunchDims grid, LaunchDims block, unsigned shared_bytes,
                               Stream stream, unsigned cluster_x, bool programmatic) {
  unsigned count = 0;
  if (cluster_x > 1) {
    CUlaunchAttribute& a = attributes[count++];
    a.id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
    a.value.clusterDim.x = cluster_x;
    a.value.clusterDim.y = 1;
    a.value.clusterDim.z = 1;
  }
  if (programmatic) {
    CUlaunchAttribute& a = attributes[count++];
    a.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
    a.value.programmaticStreamSerializationAllowed = 1;
  }
  config.gridDimX = grid.x, config.gridDimY = grid.y, config.gridDimZ = grid.z;
  config.blockDimX = block.x, config.blockDimY = block.y, config.blockDimZ = block.z;
  config.sharedMemBytes = shared_bytes;
  config.hStream = stream;
  config.attrs = attributes;
  config.numAttrs = count;
}

void launch(const LoadedKernel& kernel, Stream stream, LaunchDims grid, LaunchDims block,
            unsigned shared_bytes, const void* params, unsigned cluster_x, bool programmatic) {
  if (shared_bytes > static_cast<unsigned>(kernel.max_dynamic_shared_bytes)) [[unlikely]] {
    fail(Status::invalid_argument,
         "kernel {} asks for {} B of dynamic shared memory; device {} allows at most {} B",
         kernel.key.to_string(), shared_bytes, kernel.device_ordinal,
         kernel.max_dynamic_shared_bytes);
  }
  // Every marlinrt kernel takes exactly one params struct by value.
  void* arguments[] = {const_cast<void*>(params)};
  const bool has_ex = driver().launch_kernel_ex != nullptr;
  if (cluster_x > 1 && !has_ex) [[unlikely]] {
    fail(Status::unsupported,
         "kernel {} needs thread block clusters, which this driver cannot launch "
         "(cuLaunchKernelEx needs a CUDA 12.0 or newer driver)",
         kernel.key.to_string());
  }
  CUresult result;
  if (cluster_x > 1 || (programmatic && has_ex)) {
    const LaunchConfigEx ex(grid, block, shared_bytes, stream, cluster_x, programmatic);
    result = driver().launch_kernel_ex(&ex.config, kernel.function, arguments, nullptr);
  } else {
    result = driver().launch_kernel(kernel.function, grid.x, grid.y, grid.z, block.x, block.y,
                                    block.z, shared_bytes, stream, arguments, nullptr);
  }
  if (result != CUDA_SUCCESS) [[unlikely]] {
    launch_failed(kernel, result, grid, block, shared_bytes, cluster_x);
  }
}

Event::Event(unsigned flags) {
  check(driver().event_create(&event_, flags), "creating a CUDA event");
}

Event::Event(Event&& other) noexcept : event_(std::exchange(other.event_, nullptr)) {}

Event& Event::operator=(Event&& other) noexcept {
  if (this != &other) {
    if (event_ != nullptr) Driver::get().event_destroy(event_);
    event_ = std::exchange(other.event_, nullptr);
  }
  return *this;
}

Event::~Event() {
  if (event_ != nullptr) Driver::get().event_destroy(event_);
}

void Event::record(Stream stream) {
  check(driver().event_record(event_, stream), "recording a CUDA event");
}

void Event::synchronize() { check(driver().event_synchronize(event_), "waiting for a CUDA event"); }

float Event::elapsed_ms(const Event& start, const Event& end) {
  float ms = 0.0f;
  check(driver().event_elapsed_time(&ms, start.event_, end.event_),
        "measuring the time between two CUDA events");
  return ms;
}

OwnedStream::OwnedStream(unsigned flags) {
  CUstream s = nullptr;
  check(driver().stream_create(&s, flags), "creating a CUDA stream");
  stream_ = s;
}

OwnedStream::OwnedStream(OwnedStream&& other) noexcept
    : stream_(std::exchange(other.stream_, nullptr)) {}

OwnedStream& OwnedStream::operator=(OwnedStream&& other) noexcept {
  if (this != &other) {
    if (stream_ != nullptr) Driver::get().stream_destroy(stream_);
    stream_ = std::exchange(other.stream_, nullptr);
  }
  return *this;
}

OwnedStream::~OwnedStream() {
  if (stream_ != nullptr) Driver::get().stream_destroy(stream_);
}

void OwnedStream::synchronize() {
  check(driver().stream_synchronize(stream_), "waiting for a CUDA stream");
}

}  // namespace marlinrt::detail
