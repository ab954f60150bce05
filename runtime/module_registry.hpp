// The modules loaded on one device: cubin -> CUmodule -> CUfunction "marlinrt_kernel",
// found again through a flat table indexed by KernelKey::packed() with lock-free reads,
// so a repeated lookup costs a multiply, a shift and a probe or two (no strings, no locks).
#pragma once

#include <cuda.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

#include "marlinrt/kernel_key.hpp"

namespace marlinrt::detail {

struct DeviceInfo;

// A kernel ready to launch on one device (the primary context of `device_ordinal`).
struct LoadedKernel {
  CUfunction function = nullptr;
  CUmodule module = nullptr;
  KernelKey key;
  int device_ordinal = -1;
  int max_dynamic_shared_bytes = 0;  // raised to the device's opt-in maximum at load
  int static_shared_bytes = 0;
  int registers = 0;
  int max_threads_per_block = 0;
  // GEMM kernels on sm_90: how many clusters of c blocks (index c, 2..8) can be resident at
  // once, as the driver packs them into GPCs; 0 where clusters cannot be launched.
  std::array<int, 9> resident_clusters{};
};
using Kernel = LoadedKernel;

// A flat open-addressing map from KernelKey::packed() values (never 0) to loaded
// kernels: lock-free find(); insert() is serialized by the owner. Grows at half full by
// publishing a bigger copy; old copies stay alive because a reader may still probe one.
class KernelTable {
 public:
  KernelTable();
  KernelTable(const KernelTable&) = delete;
  KernelTable& operator=(const KernelTable&) = delete;

  const LoadedKernel* find(std::uint64_t packed) const noexcept {
    const Table* table = table_.load(std::memory_order_acquire);
    for (std::size_t i = table->slot_of(packed);; i = (i + 1) & table->mask) {
      const std::uint64_t k = table->slots[i].key.load(std::memory_order_acquire);
      if (k == packed) return table->slots[i].kernel.load(std::memory_order_relaxed);
      if (k == kEmpty) return nullptr;
    }
  }
  // `packed` must be non-zero and not present; `kernel` must outlive the table.
  void insert(std::uint64_t packed, const LoadedKernel* kernel);
  std::size_t size() const noexcept { return size_.load(std::memory_order_relaxed); }
  std::size_t capacity() const noexcept;

 private:
  static constexpr std::uint64_t kEmpty = 0;

  struct Slot {
    std::atomic<std::uint64_t> key{kEmpty};
    std::atomic<const LoadedKernel*> kernel{nullptr};
  };
  struct Table {
    explicit Table(int bits);
    std::size_t slot_of(std::uint64_t packed) const noexcept {
      // Fibonacci hashing: the top bits of a multiply by 2^64/phi.
      return static_cast<std::size_t>((packed * 0x9e3779b97f4a7c15ull) >> shift);
    }
    void put(std::uint64_t packed, const LoadedKernel* kernel);
    int shift;
    std::size_t mask;
    std::unique_ptr<Slot[]> slots;
  };

  std::atomic<const Table*> table_{nullptr};
  std::atomic<std::size_t> size_{0};
  std::vector<std::unique_ptr<Table>> tables_;  // every table ever published; back() is current
  std::vector<std::pair<std::uint64_t, const LoadedKernel*>> entries_;  // for rehashing
};

// The modules loaded on one device (its primary context).
class ModuleRegistry {
 public:
  explicit ModuleRegistry(const DeviceInfo& device);
  ~ModuleRegistry();  // unloads every module (lookups must have stopped)
  ModuleRegistry(const ModuleRegistry&) = delete;
  ModuleRegistry& operator=(const ModuleRegistry&) = delete;

  // Lock-free; null when `packed` was never loaded here.
  const LoadedKernel* find(std::uint64_t packed) const noexcept { return table_.find(packed); }

  // Loads `cubin` for `key` into the device's primary context (which must be current),
  // unless another thread already did. Throws Error(cuda_error) naming the key.
  const LoadedKernel& load(const KernelKey& key, std::string_view cubin);

  std::size_t size() const noexcept { return table_.size(); }
  const DeviceInfo& device() const noexcept { return device_; }

 private:
  const DeviceInfo& device_;
  KernelTable table_;
  std::mutex mutex_;  // serializes loads
  std::vector<std::unique_ptr<LoadedKernel>> kernels_;
};

}  // namespace marlinrt::detail
