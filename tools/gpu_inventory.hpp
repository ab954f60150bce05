// The GPUs of this machine, as the command reports them (`info`, default
// `--arch`, the SM count the dense dispatch assumes).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace marlinrt::cli {

struct GpuInfo {
  int ordinal = 0;
  std::string name;
  int compute_capability = 0;  // major*10+minor, e.g. 90
  int sm_count = 0;
  std::uint64_t memory_bytes = 0;
};

struct GpuInventory {
  bool driver_usable = false;  // marlinrt could load the CUDA driver and find a GPU
  std::string driver_reason;   // why not, or a one-line summary when usable
  int driver_version = 0;      // e.g. 13000 for CUDA 13.0; 0 when unknown
  std::vector<GpuInfo> gpus;
};

// Queried once per process; never throws (problems end up in driver_reason).
const GpuInventory& gpu_inventory();

}  // namespace marlinrt::cli
