#include "runtime/driver.hpp"

#include <dlfcn.h>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string_view>

#include <fmt/format.h>

#include "runtime/cuda_check.hpp"
#include "runtime/fail.hpp"

namespace marlinrt::detail {
namespace {

constexpr const char* kDriverLibrary = "libcuda.so.1";

using GetProcAddress = CUresult (*)(const char* symbol, void** pfn, int cuda_version,
                                    cuuint64_t flags, CUdriverProcAddressQueryResult* status);

// Resolves one entry point. `versions` are tried in order: the first is the version
// whose ABI the <cuda.h> prototype describes; later ones are older versions with the
// same signature, for drivers that predate the newest.
template <typename Fn>
bool resolve(GetProcAddress get_proc, Fn& fn, const char* name, std::initializer_list<int> versions,
             std::string& missing) {
  for (int version : versions) {
    void* p = nullptr;
    CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    if (get_proc(name, &p, version, CU_GET_PROC_ADDRESS_LEGACY_STREAM, &status) == CUDA_SUCCESS &&
        status == CU_GET_PROC_ADDRESS_SUCCESS && p != nullptr) {
      fn = reinterpret_cast<Fn>(p);
      return true;
    }
  }
  if (!missing.empty()) missing += ", ";
  missing += name;
  return false;
}

// Every entry point marlinrt uses, with the CUDA version that selects the ABI of the
// prototype in <cuda.h> (e.g. cuMemAlloc at 3020 is cuMemAlloc_v2).
std::string resolve_all(GetProcAddress g, Driver& d) {
  std::string missing;
  resolve(g, d.init, "cuInit", {2000}, missing);
  resolve(g, d.driver_get_version, "cuDriverGetVersion", {2020}, missing);
  resolve(g, d.device_get_count, "cuDeviceGetCount", {2000}, missing);
  resolve(g, d.device_get, "cuDeviceGet", {2000}, missing);
  resolve(g, d.device_get_name, "cuDeviceGetName", {2000}, missing);
  resolve(g, d.device_get_attribute, "cuDeviceGetAttribute", {2000}, missing);
  resolve(g, d.device_total_mem, "cuDeviceTotalMem", {3020}, missing);
  resolve(g, d.device_primary_ctx_retain, "cuDevicePrimaryCtxRetain", {7000}, missing);
  resolve(g, d.device_primary_ctx_release, "cuDevicePrimaryCtxRelease", {11000}, missing);
  resolve(g, d.ctx_get_current, "cuCtxGetCurrent", {4000}, missing);
  resolve(g, d.ctx_set_current, "cuCtxSetCurrent", {4000}, missing);
  resolve(g, d.ctx_get_device, "cuCtxGetDevice", {2000}, missing);
  resolve(g, d.ctx_synchronize, "cuCtxSynchronize", {2000}, missing);
  resolve(g, d.module_load_data, "cuModuleLoadData", {2000}, missing);
  resolve(g, d.module_unload, "cuModuleUnload", {2000}, missing);
  resolve(g, d.module_get_function, "cuModuleGetFunction", {2000}, missing);
  resolve(g, d.func_set_attribute, "cuFuncSetAttribute", {9000}, missing);
  resolve(g, d.func_get_attribute, "cuFuncGetAttribute", {2020}, missing);
  resolve(g, d.launch_kernel, "cuLaunchKernel", {4000}, missing);
  resolve(g, d.mem_alloc, "cuMemAlloc", {3020}, missing);
  resolve(g, d.mem_free, "cuMemFree", {3020}, missing);
  resolve(g, d.mem_get_info, "cuMemGetInfo", {3020}, missing);
  resolve(g, d.memcpy_htod, "cuMemcpyHtoD", {3020}, missing);
  resolve(g, d.memcpy_dtoh, "cuMemcpyDtoH", {3020}, missing);
  resolve(g, d.memcpy_htod_async, "cuMemcpyHtoDAsync", {3020}, missing);
  resolve(g, d.memcpy_dtoh_async, "cuMemcpyDtoHAsync", {3020}, missing);
  resolve(g, d.memcpy_dtod_async, "cuMemcpyDtoDAsync", {3020}, missing);
  resolve(g, d.memset_d8_async, "cuMemsetD8Async", {3020}, missing);
  resolve(g, d.memset_d32_async, "cuMemsetD32Async", {3020}, missing);
  resolve(g, d.stream_create, "cuStreamCreate", {2000}, missing);
  resolve(g, d.stream_destroy, "cuStreamDestroy", {4000}, missing);
  resolve(g, d.stream_synchronize, "cuStreamSynchronize", {2000}, missing);
  resolve(g, d.stream_is_capturing, "cuStreamIsCapturing", {10000}, missing);
  resolve(g, d.stream_begin_capture, "cuStreamBeginCapture", {10010}, missing);
  resolve(g, d.stream_end_capture, "cuStreamEndCapture", {10000}, missing);
  resolve(g, d.graph_destroy, "cuGraphDestroy", {10000}, missing);
  resolve(g, d.pointer_get_attribute, "cuPointerGetAttribute", {4000}, missing);
  resolve(g, d.pointer_get_attributes, "cuPointerGetAttributes", {7000}, missing);
  resolve(g, d.event_create, "cuEventCreate", {2000}, missing);
  resolve(g, d.event_record, "cuEventRecord", {2000}, missing);
  resolve(g, d.event_synchronize, "cuEventSynchronize", {2000}, missing);
  resolve(g, d.event_elapsed_time, "cuEventElapsedTime", {12080, 2000}, missing);
  resolve(g, d.event_destroy, "cuEventDestroy", {4000}, missing);
  resolve(g, d.get_error_name, "cuGetErrorName", {6000}, missing);
  resolve(g, d.get_error_string, "cuGetErrorString", {6000}, missing);
  std::string optional;  // entry points marlinrt can do without
  resolve(g, d.launch_kernel_ex, "cuLaunchKernelEx", {12000}, optional);
  resolve(g, d.occupancy_max_active_clusters, "cuOccupancyMaxActiveClusters", {11080}, optional);
  return missing;
}

std::string describe_with(const Driver* d, CUresult result) {
  const char* name = nullptr;
  const char* text = nullptr;
  if (d != nullptr && d->get_error_name != nullptr) d->get_error_name(result, &name);
  if (d != nullptr && d->get_error_string != nullptr) d->get_error_string(result, &text);
  if (name == nullptr) return fmt::format("CUDA error {}", static_cast<int>(result));
  if (text == nullptr) return name;
  return fmt::format("{} ({})", name, text);
}

std::string version_text(int v) { return fmt::format("{}.{}", v / 1000, (v % 1000) / 10); }

struct ProcessDriver {
  Driver driver;
  DriverProbe probe;
};

const ProcessDriver& process_driver() noexcept {
  // Loaded once and never unloaded: modules and contexts live until the process ends.
  static const ProcessDriver* instance = [] {
    auto* p = new ProcessDriver;
    p->probe = Driver::load(kDriverLibrary, p->driver);
    return p;
  }();
  return *instance;
}

struct DeviceSlot {
  std::once_flag once;
  std::unique_ptr<DeviceInfo> info;
};

std::array<DeviceSlot, kMaxDevices>& device_slots() {
  static auto* slots = new std::array<DeviceSlot, kMaxDevices>;
  return *slots;
}

std::unique_ptr<DeviceInfo> query_device(const Driver& d, int ordinal) {
  auto info = std::make_unique<DeviceInfo>();
  info->ordinal = ordinal;
  check(d.device_get(&info->device, ordinal), fmt::format("getting CUDA device {}", ordinal));
  auto attribute = [&](CUdevice_attribute a, const char* what) {
    int value = 0;
    check(d.device_get_attribute(&value, a, info->device),
          fmt::format("reading {} of device {}", what, ordinal));
    return value;
  };
  const int major = attribute(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, "compute capability");
  const int minor = attribute(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, "compute capability");
  info->compute_capability = major * 10 + minor;
  info->sm_count = attribute(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, "the SM count");
  info->max_shared_per_block_optin = attribute(
      CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, "the opt-in shared memory per block");
  check(d.device_total_mem(&info->total_memory, info->device),
        fmt::format("reading the memory size of device {}", ordinal));
  char name[256] = {};
  check(d.device_get_name(name, sizeof(name) - 1, info->device),
        fmt::format("reading the name of device {}", ordinal));
  info->name = name;
  // Retained for the life of the process: modules loaded into it stay valid.
  check(d.device_primary_ctx_retain(&info->context, info->device),
        fmt::format("retaining the primary context of device {}", ordinal));
  return info;
}

}  // namespace

void throw_cuda_error(CUresult result, std::string_view what) {
  const ProcessDriver& p = process_driver();
  throw Error(Status::cuda_error,
              fmt::format("{} failed: {}", what, describe_with(&p.driver, result)));
}

std::string describe_cuda_result(CUresult result) {
  return describe_with(&process_driver().driver, result);
}

DriverProbe Driver::load(const char* library, Driver& out) noexcept {
  DriverProbe probe;
  try {
    out = Driver{};
    void* handle = dlopen(library, RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* err = dlerror();
      std::string_view why = err != nullptr ? err : "unknown dlopen error";
      // dlerror() usually starts with the library name already; say it once.
      const std::string prefix = fmt::format("{}: ", library);
      if (why.substr(0, prefix.size()) == prefix) why.remove_prefix(prefix.size());
      probe.status = Status::no_driver;
      probe.reason = fmt::format("no CUDA driver found ({}: {})", library, why);
      return probe;
    }
    // The CUDA 12+ entry point (with the symbol-status argument).
    auto get_proc = reinterpret_cast<GetProcAddress>(dlsym(handle, "cuGetProcAddress_v2"));
    if (get_proc == nullptr) {
      probe.status = Status::no_driver;
      probe.reason = fmt::format(
          "no usable CUDA driver: {} has no cuGetProcAddress_v2 (a CUDA 12.0 or newer driver is "
          "needed)",
          library);
      return probe;
    }
    const std::string missing = resolve_all(get_proc, out);
    if (!missing.empty()) {
      out = Driver{};
      probe.status = Status::no_driver;
      probe.reason = fmt::format(
          "no usable CUDA driver: {} lacks entry points marlinrt needs ({}); update the driver",
          library, missing);
      return probe;
    }
    out.driver_get_version(&probe.driver_version);
    const CUresult init = out.init(0);
    if (init != CUDA_SUCCESS) {
      probe.status = Status::no_device;
      probe.reason = fmt::format("CUDA driver {} found but cuInit failed: {}",
                                 version_text(probe.driver_version), describe_with(&out, init));
      return probe;
    }
    const CUresult count = out.device_get_count(&probe.device_count);
    if (count != CUDA_SUCCESS || probe.device_count <= 0) {
      probe.status = Status::no_device;
      probe.reason =
          fmt::format("CUDA driver {} found but no GPU is visible{} (check CUDA_VISIBLE_DEVICES)",
                      version_text(probe.driver_version),
                      count != CUDA_SUCCESS ? fmt::format(": {}", describe_with(&out, count)) : "");
      probe.device_count = 0;
      return probe;
    }
    probe.usable = true;
    probe.status = Status::ok;
    probe.reason = fmt::format("CUDA driver {}, {} device{}", version_text(probe.driver_version),
                               probe.device_count, probe.device_count == 1 ? "" : "s");
  } catch (...) {
    // Only allocation can throw above; report instead of escaping a noexcept function.
    probe.usable = false;
    probe.status = Status::internal;
    probe.reason = "out of memory while loading the CUDA driver";
  }
  return probe;
}

const DriverProbe& Driver::probe() noexcept { return process_driver().probe; }

const Driver& Driver::get() {
  const ProcessDriver& p = process_driver();
  if (!p.probe.usable) [[unlikely]] {
    throw Error(p.probe.status, p.probe.reason);
  }
  return p.driver;
}

const DeviceInfo& device_info(int ordinal) {
  const Driver& d = driver();
  const int count = Driver::probe().device_count;
  if (ordinal < 0 || ordinal >= count) {
    fail(Status::no_device, "CUDA device {} does not exist: {} device{} visible (0..{})", ordinal,
         count, count == 1 ? " is" : "s are", count - 1);
  }
  if (ordinal >= kMaxDevices) {
    fail(Status::unsupported, "CUDA device {}: marlinrt supports device ordinals below {}", ordinal,
         kMaxDevices);
  }
  DeviceSlot& slot = device_slots()[ordinal];
  // call_once retries if the query throws, so a transient failure is not cached.
  std::call_once(slot.once, [&] { slot.info = query_device(d, ordinal); });
  return *slot.info;
}

const DeviceInfo& current_device() {
  const Driver& d = driver();
  // The last context this thread resolved; primary contexts are retained forever by
  // marlinrt, so a handle seen here cannot be destroyed and reused.
  thread_local CUcontext cached_context = nullptr;
  thread_local const DeviceInfo* cached_info = nullptr;

  CUcontext context = nullptr;
  check(d.ctx_get_current(&context), "querying the current CUDA context");
  if (context != nullptr && context == cached_context) return *cached_info;

  if (context == nullptr) {
    const DeviceInfo& info = device_info(0);
    check(d.ctx_set_current(info.context), "making device 0's primary context current");
    cached_context = info.context;
    cached_info = &info;
    return info;
  }
  CUdevice device = 0;
  check(d.ctx_get_device(&device), "querying the device of the current CUDA context");
  const int count = Driver::probe().device_count;
  for (int ordinal = 0; ordinal < count && ordinal < kMaxDevices; ++ordinal) {
    CUdevice candidate = 0;
    if (d.device_get(&candidate, ordinal) != CUDA_SUCCESS || candidate != device) continue;
    const DeviceInfo& info = device_info(ordinal);
    if (info.context != context) {
      fail(Status::unsupported,
           "the current CUDA context is not the primary context of device {}: marlinrt loads its "
           "kernels into primary contexts (use the CUDA runtime API, or make the context from "
           "cuDevicePrimaryCtxRetain current)",
           ordinal);
    }
    cached_context = context;
    cached_info = &info;
    return info;
  }
  fail(Status::no_device, "the current CUDA context belongs to a device marlinrt cannot find");
}

}  // namespace marlinrt::detail
