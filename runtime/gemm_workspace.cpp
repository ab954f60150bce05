#include "runtime/gemm_workspace.hpp"

#include <cuda.h>

#include <map>
#include <mutex>
#include <utility>

#include "runtime/cuda_check.hpp"
#include "runtime/device_buffer.hpp"
#include "runtime/driver.hpp"

namespace marlinrt::detail {
namespace {

struct Buffers {
  DeviceBuffer partials, locks;
};

}  // namespace

GemmWorkspace gemm_workspace(Stream stream, std::int64_t floats, std::int64_t locks) {
  static std::mutex mutex;
  static std::map<std::pair<int, Stream>, Buffers> buffers;  // lives until exit
  const int device = current_device().ordinal;
  std::lock_guard lock(mutex);
  Buffers& b = buffers[{device, stream}];
  const auto need_p = static_cast<std::size_t>(floats) * sizeof(float);
  const auto need_l = static_cast<std::size_t>(locks) * sizeof(int);
  if (b.partials.size() < need_p || b.locks.size() < need_l) {
    const auto& drv = driver();
    check(drv.stream_synchronize(stream), "waiting before growing the GEMM workspace");
    if (b.partials.size() < need_p) b.partials = DeviceBuffer(need_p * 2);
    if (b.locks.size() < need_l) {
      b.locks = DeviceBuffer(need_l * 2);
      check(drv.memset_d32_async(b.locks.ptr(), 0, b.locks.size() / sizeof(int), stream),
            "clearing the GEMM tile counters");
    }
  }
  return {static_cast<float*>(b.partials.data()), static_cast<int*>(b.locks.data())};
}

}  // namespace marlinrt::detail
