// Launching a loaded kernel on the caller's stream, and CUDA events for timing.
#pragma once

#include <cuda.h>

#include "marlinrt/runtime.hpp"
#include "runtime/module_registry.hpp"

namespace marlinrt::detail {

struct LaunchDims {
  unsigned x = 1, y = 1, z = 1;
};

// A cuLaunchKernelEx configuration: thread block clusters of `cluster_x` blocks along x (when
// > 1) and/or a programmatic dependent launch (`programmatic`: the kernel may start before
// the previous kernel in the stream has finished; it waits for it with griddepcontrol.wait).
// `config.attrs` points into the object, so it is neither copied nor moved.
struct LaunchConfigEx {
  CUlaunchAttribute attributes[2]{};
  CUlaunchConfig config{};

  LaunchConfigEx(LaunchDims grid, LaunchDims block, unsigned shared_bytes, Stream stream,
                 unsigned cluster_x, bool programmatic = false);
  LaunchConfigEx(const LaunchConfigEx&) = delete;
  LaunchConfigEx& operator=(const LaunchConfigEx&) = delete;
};

// Launches `kernel` with its one params struct (`params` points at it) on `stream`
// (null: the legacy default stream). The current context must be the kernel's device's
// primary context (get_kernel() leaves it so). Throws Error(invalid_argument) when
// `shared_bytes` exceeds what the kernel may use, Error(cuda_error) when the launch fails.
// `cluster_x` > 1 launches thread block clusters of that many blocks along x (sm_90 and a
// driver with cuLaunchKernelEx; Error(unsupported) otherwise). `programmatic` asks for a
// programmatic dependent launch (sm_90; ignored where cuLaunchKernelEx is missing): only
// for kernels that call griddepcontrol.wait before touching anything an earlier kernel in
// the stream may still write.
void launch(const LoadedKernel& kernel, Stream stream, LaunchDims grid, LaunchDims block,
            unsigned shared_bytes, const void* params, unsigned cluster_x = 1,
            bool programmatic = false);

// A CUDA event (RAII, move-only) in the current context.
class Event {
 public:
  explicit Event(unsigned flags = CU_EVENT_DEFAULT);
  Event(Event&& other) noexcept;
  Event& operator=(Event&& other) noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event();

  void record(Stream stream);
  void synchronize();
  CUevent get() const noexcept { return event_; }
  // Milliseconds between two recorded events (the later one must have completed).
  static float elapsed_ms(const Event& start, const Event& end);

 private:
  CUevent event_ = nullptr;
};

// A stream of its own (RAII, move-only) in the current context.
class OwnedStream {
 public:
  explicit OwnedStream(unsigned flags = CU_STREAM_NON_BLOCKING);
  OwnedStream(OwnedStream&& other) noexcept;
  OwnedStream& operator=(OwnedStream&& other) noexcept;
  OwnedStream(const OwnedStream&) = delete;
  OwnedStream& operator=(const OwnedStream&) = delete;
  ~OwnedStream();

  Stream get() const noexcept { return stream_; }
  void synchronize();

 private:
  Stream stream_ = nullptr;
};

}  // namespace marlinrt::detail
