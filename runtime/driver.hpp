// The CUDA driver, loaded at run time (dlopen("libcuda.so.1") + cuGetProcAddress) so
// that the library links and its host parts run on machines without a driver; and the
// context model: marlinrt works in the primary context of the caller's current device.
#pragma once

#include <cuda.h>

#include <cstddef>
#include <string>

#include "marlinrt/error.hpp"

namespace marlinrt::detail {

// What loading the driver found. `probe()` never throws; it reports here instead.
struct DriverProbe {
  bool usable = false;
  Status status = Status::no_driver;  // ok when usable, else no_driver or no_device
  std::string reason;                 // why not usable, or e.g. "CUDA driver 12.8, 2 devices"
  int driver_version = 0;             // cuDriverGetVersion, e.g. 12080; 0 without a driver
  int device_count = 0;
};

// Driver entry points with the signatures of the <cuda.h> this library was built with
// (decltype of the header's prototypes, so the versioned names the header maps to, e.g.
// cuMemAlloc -> cuMemAlloc_v2, fix both the type and the version requested at load).
struct Driver {
  decltype(&::cuInit) init = nullptr;
  decltype(&::cuDriverGetVersion) driver_get_version = nullptr;
  decltype(&::cuDeviceGetCount) device_get_count = nullptr;
  decltype(&::cuDeviceGet) device_get = nullptr;
  decltype(&::cuDeviceGetName) device_get_name = nullptr;
  decltype(&::cuDeviceGetAttribute) device_get_attribute = nullptr;
  decltype(&::cuDeviceTotalMem) device_total_mem = nullptr;
  decltype(&::cuDevicePrimaryCtxRetain) device_primary_ctx_retain = nullptr;
  decltype(&::cuDevicePrimaryCtxRelease) device_primary_ctx_release = nullptr;
  decltype(&::cuCtxGetCurrent) ctx_get_current = nullptr;
  decltype(&::cuCtxSetCurrent) ctx_set_current = nullptr;
  decltype(&::cuCtxGetDevice) ctx_get_device = nullptr;
  decltype(&::cuCtxSynchronize) ctx_synchronize = nullptr;
  decltype(&::cuModuleLoadData) module_load_data = nullptr;
  decltype(&::cuModuleUnload) module_unload = nullptr;
  decltype(&::cuModuleGetFunction) module_get_function = nullptr;
  decltype(&::cuFuncSetAttribute) func_set_attribute = nullptr;
  decltype(&::cuFuncGetAttribute) func_get_attribute = nullptr;
  decltype(&::cuLaunchKernel) launch_kernel = nullptr;
  // Optional (drivers from CUDA 12.0): null when the driver cannot launch thread block clusters.
  decltype(&::cuLaunchKernelEx) launch_kernel_ex = nullptr;
  decltype(&::cuOccupancyMaxActiveClusters) occupancy_max_active_clusters = nullptr;  // optional
  decltype(&::cuMemAlloc) mem_alloc = nullptr;
  decltype(&::cuMemFree) mem_free = nullptr;
  decltype(&::cuMemGetInfo) mem_get_info = nullptr;
  decltype(&::cuMemcpyHtoD) memcpy_htod = nullptr;
  decltype(&::cuMemcpyDtoH) memcpy_dtoh = nullptr;
  decltype(&::cuMemcpyHtoDAsync) memcpy_htod_async = nullptr;
  decltype(&::cuMemcpyDtoHAsync) memcpy_dtoh_async = nullptr;
  decltype(&::cuMemcpyDtoDAsync) memcpy_dtod_async = nullptr;
  decltype(&::cuMemsetD8Async) memset_d8_async = nullptr;
  decltype(&::cuMemsetD32Async) memset_d32_async = nullptr;
  decltype(&::cuStreamCreate) stream_create = nullptr;
  decltype(&::cuStreamDestroy) stream_destroy = nullptr;
  decltype(&::cuStreamSynchronize) stream_synchronize = nullptr;
  decltype(&::cuStreamIsCapturing) stream_is_capturing = nullptr;
  decltype(&::cuStreamBeginCapture) stream_begin_capture = nullptr;
  decltype(&::cuStreamEndCapture) stream_end_capture = nullptr;
  decltype(&::cuGraphDestroy) graph_destroy = nullptr;
  decltype(&::cuPointerGetAttribute) pointer_get_attribute = nullptr;
  decltype(&::cuPointerGetAttributes) pointer_get_attributes = nullptr;
  decltype(&::cuEventCreate) event_create = nullptr;
  decltype(&::cuEventRecord) event_record = nullptr;
  decltype(&::cuEventSynchronize) event_synchronize = nullptr;
  decltype(&::cuEventElapsedTime) event_elapsed_time = nullptr;
  decltype(&::cuEventDestroy) event_destroy = nullptr;
  decltype(&::cuGetErrorName) get_error_name = nullptr;
  decltype(&::cuGetErrorString) get_error_string = nullptr;

  // The process-wide driver, loaded and initialized (cuInit) on first use. Never throws.
  static const DriverProbe& probe() noexcept;
  // The process-wide driver; throws Error(no_driver or no_device) with the probe's reason.
  static const Driver& get();
  // Loads `library` afresh into `out` and initializes it. For tests and diagnostics: the
  // process-wide driver is "libcuda.so.1". Never throws.
  static DriverProbe load(const char* library, Driver& out) noexcept;
};

inline const Driver& driver() { return Driver::get(); }

// "CUDA_ERROR_INVALID_VALUE (invalid argument)", or "CUDA error 1" without a driver.
std::string describe_cuda_result(CUresult result);

// Devices per process that marlinrt keeps state for (ordinals 0..kMaxDevices-1).
inline constexpr int kMaxDevices = 64;

// One GPU as marlinrt uses it. Cached per device for the life of the process.
struct DeviceInfo {
  CUdevice device = 0;
  int ordinal = 0;
  CUcontext context = nullptr;  // the device's primary context, retained by marlinrt
  int compute_capability = 0;   // major*10+minor: 80, 86, 89, 90
  int sm_count = 0;
  int max_shared_per_block_optin = 0;  // bytes a kernel may opt in to per block
  std::size_t total_memory = 0;
  std::string name;
};

// The device of the caller's current context (its primary context must be the current
// one); with no current context, device 0's primary context, which is made current.
// Cheap on repeat calls from a thread (one driver call and a compare).
const DeviceInfo& current_device();
// Information on device `ordinal` (retains its primary context; does not make it current).
const DeviceInfo& device_info(int ordinal);

}  // namespace marlinrt::detail
