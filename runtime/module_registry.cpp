#include "runtime/module_registry.hpp"

#include <fmt/format.h>

#include "runtime/cuda_check.hpp"
#include "runtime/dense_dispatch.hpp"
#include "runtime/driver.hpp"
#include "runtime/fail.hpp"
#include "runtime/launch.hpp"
#include "runtime/log.hpp"
#include "runtime/nvrtc_compiler.hpp"
#include "runtime/specialization.hpp"

namespace marlinrt::detail {
namespace {

// Fills kernel.resident_clusters (see LoadedKernel).
void count_resident_clusters(LoadedKernel& kernel) {
  const GemmTile& tile = kernel.key.tile;
  for (unsigned c = 2; c < kernel.resident_clusters.size(); ++c) {
    const LaunchConfigEx cluster({c}, {static_cast<unsigned>(gemm_launch_threads(tile))},
                                 static_cast<unsigned>(gemm_smem_bytes(tile)), nullptr, c);
    int count = 0;
    // A refusal (a cluster that can never be resident) leaves 0: the plan falls back.
    if (driver().occupancy_max_active_clusters(&count, kernel.function, &cluster.config) ==
        CUDA_SUCCESS)
      kernel.resident_clusters[c] = count;
  }
}

constexpr int kInitialTableBits = 6;  // 64 slots; a process rarely loads more than a few dozen

std::string version_text(int v) { return fmt::format("{}.{}", v / 1000, (v % 1000) / 10); }

}  // namespace

KernelTable::Table::Table(int bits)
    : shift(64 - bits), mask((std::size_t{1} << bits) - 1), slots(new Slot[mask + 1]) {}

void KernelTable::Table::put(std::uint64_t packed, const LoadedKernel* kernel) {
  std::size_t i = slot_of(packed);
  while (slots[i].key.load(std::memory_order_relaxed) != kEmpty) i = (i + 1) & mask;
  // The kernel pointer first: a reader that sees the key (acquire) then sees the pointer.
  slots[i].kernel.store(kernel, std::memory_order_relaxed);
  slots[i].key.store(packed, std::memory_order_release);
}

KernelTable::KernelTable() {
  tables_.push_back(std::make_unique<Table>(kInitialTableBits));
  table_.store(tables_.back().get(), std::memory_order_release);
}

std::size_t KernelTable::capacity() const noexcept {
  return table_.load(std::memory_order_acquire)->mask + 1;
}

void KernelTable::insert(std::uint64_t packed, const LoadedKernel* kernel) {
  if (packed == kEmpty) fail(Status::internal, "kernel table: key 0 is reserved");
  // Grow at half full, so probes stay short and an empty slot always ends a search.
  if ((entries_.size() + 1) * 2 > tables_.back()->mask + 1) {
    auto bigger = std::make_unique<Table>(64 - tables_.back()->shift + 1);
    for (const auto& [k, v] : entries_) bigger->put(k, v);
    tables_.push_back(std::move(bigger));
  }
  entries_.emplace_back(packed, kernel);
  tables_.back()->put(packed, kernel);
  table_.store(tables_.back().get(), std::memory_order_release);
  size_.store(entries_.size(), std::memory_order_relaxed);
}

ModuleRegistry::ModuleRegistry(const DeviceInfo& device) : device_(device) {}

ModuleRegistry::~ModuleRegistry() {
  if (kernels_.empty() || !Driver::probe().usable) return;
  const Driver& d = Driver::get();
  // cuModuleUnload acts on the current context: make the modules' context current.
  CUcontext previous = nullptr;
  d.ctx_get_current(&previous);
  if (previous != device_.context) d.ctx_set_current(device_.context);
  for (const auto& kernel : kernels_) d.module_unload(kernel->module);
  if (previous != device_.context) d.ctx_set_current(previous);
}

const LoadedKernel& ModuleRegistry::load(const KernelKey& key, std::string_view cubin) {
  const std::uint64_t packed = key.packed();
  std::lock_guard lock(mutex_);
  if (const LoadedKernel* existing = find(packed)) return *existing;

  const Driver& d = driver();
  auto kernel = std::make_unique<LoadedKernel>();
  kernel->key = key;
  kernel->device_ordinal = device_.ordinal;
  const CUresult loaded = d.module_load_data(&kernel->module, cubin.data());
  if (loaded != CUDA_SUCCESS) {
    // The usual cause is a driver older than the NVRTC that produced the cubin.
    check(loaded, fmt::format("loading the cubin of kernel {} ({} bytes) on device {} ({}, sm_{}) "
                              "with CUDA driver {} (compiled by NVRTC {}; an older driver than "
                              "the compiler may reject its cubins)",
                              key.to_string(), cubin.size(), device_.ordinal, device_.name,
                              device_.compute_capability,
                              version_text(Driver::probe().driver_version), nvrtc_version()));
  }
  try {
    check(d.module_get_function(&kernel->function, kernel->module, kKernelEntryName),
          fmt::format("finding {} in the module of kernel {}", kKernelEntryName, key.to_string()));
    auto attribute = [&](CUfunction_attribute a, const char* what) {
      int value = 0;
      check(d.func_get_attribute(&value, a, kernel->function),
            fmt::format("reading the {} of kernel {}", what, key.to_string()));
      return value;
    };
    kernel->static_shared_bytes =
        attribute(CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, "static shared size");
    kernel->registers = attribute(CU_FUNC_ATTRIBUTE_NUM_REGS, "register count");
    kernel->max_threads_per_block =
        attribute(CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, "maximum threads per block");
    // Opt in to all the shared memory the device allows, once, here: launches need not.
    const int dynamic_limit = device_.max_shared_per_block_optin - kernel->static_shared_bytes;
    if (dynamic_limit > 0) {
      check(d.func_set_attribute(kernel->function, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                 dynamic_limit),
            fmt::format("raising the dynamic shared memory limit of kernel {} to {} bytes",
                        key.to_string(), dynamic_limit));
      kernel->max_dynamic_shared_bytes = dynamic_limit;
    }
    if (key.kind == KernelKind::gemm && key.arch >= 90 && d.launch_kernel_ex != nullptr &&
        d.occupancy_max_active_clusters != nullptr) {
      count_resident_clusters(*kernel);
    }
  } catch (...) {
    d.module_unload(kernel->module);
    throw;
  }
  log(LogLevel::debug, "loaded kernel {} on device {}: {} registers, {} B static shared",
      key.to_string(), device_.ordinal, kernel->registers, kernel->static_shared_bytes);

  kernels_.push_back(std::move(kernel));
  table_.insert(packed, kernels_.back().get());
  return *kernels_.back();
}

}  // namespace marlinrt::detail
