#include "tools/gpu_inventory.hpp"

#include <cuda.h>

#include "runtime/driver.hpp"

namespace marlinrt::cli {
namespace {

// Device properties straight from the driver: no context is created, so `info`
// stays fast on machines with many GPUs.
GpuInventory query() {
  GpuInventory inv;
  const detail::DriverProbe& probe = detail::Driver::probe();
  inv.driver_usable = probe.usable;
  inv.driver_reason = probe.reason;
  inv.driver_version = probe.driver_version;
  if (!probe.usable) return inv;
  const detail::Driver& drv = detail::Driver::get();
  for (int i = 0; i < probe.device_count; ++i) {
    CUdevice device = 0;
    if (drv.device_get(&device, i) != CUDA_SUCCESS) continue;
    GpuInfo gpu;
    gpu.ordinal = i;
    char name[256] = {};
    if (drv.device_get_name(name, sizeof(name) - 1, device) == CUDA_SUCCESS) gpu.name = name;
    int major = 0, minor = 0, sms = 0;
    drv.device_get_attribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device);
    drv.device_get_attribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device);
    drv.device_get_attribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device);
    gpu.compute_capability = major * 10 + minor;
    gpu.sm_count = sms;
    std::size_t bytes = 0;
    if (drv.device_total_mem(&bytes, device) == CUDA_SUCCESS) gpu.memory_bytes = bytes;
    inv.gpus.push_back(std::move(gpu));
  }
  return inv;
}

}  // namespace

const GpuInventory& gpu_inventory() {
  static const GpuInventory inventory = [] {
    try {
      return query();
    } catch (const std::exception& e) {
      GpuInventory failed;
      failed.driver_reason = e.what();
      return failed;
    }
  }();
  return inventory;
}

}  // namespace marlinrt::cli
