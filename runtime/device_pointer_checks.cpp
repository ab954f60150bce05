#include "runtime/device_pointer_checks.hpp"

#include <cuda.h>

#include <cstdint>

#include "runtime/driver.hpp"
#include "runtime/fail.hpp"

namespace marlinrt::detail {

int device_of_pointer(const void* ptr) {
  // One driver call for both attributes: this runs on every launch.
  int ordinal = -1;
  unsigned memory_type = 0;
  CUpointer_attribute attributes[] = {CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
                                      CU_POINTER_ATTRIBUTE_MEMORY_TYPE};
  void* values[] = {&ordinal, &memory_type};
  const auto r =
      driver().pointer_get_attributes(2, attributes, values, reinterpret_cast<CUdeviceptr>(ptr));
  // Unknown pointers give success with memory type 0 here (not an error, unlike the singular
  // query): only device or managed memory counts.
  if (r != CUDA_SUCCESS || memory_type == 0 || memory_type == CU_MEMORYTYPE_HOST) return -1;
  return ordinal;
}

void check_alignment(std::string_view what, const void* ptr, std::size_t bytes) {
  if (reinterpret_cast<std::uintptr_t>(ptr) % bytes != 0) {
    fail(Status::invalid_argument, "{} at {} is not {}-byte aligned (it must be)", what, ptr,
         bytes);
  }
}

void check_device_matrix(std::string_view what, const MatrixView& v, DType dtype, std::int64_t rows,
                         std::int64_t cols, int device) {
  if (v.data == nullptr) fail(Status::invalid_argument, "{} is a null pointer", what);
  if (v.dtype != dtype) {
    fail(Status::invalid_argument, "{} has dtype {}, expected {}", what, dtype_name(v.dtype),
         dtype_name(dtype));
  }
  if (v.rows < 0 || v.cols < 0) {
    fail(Status::invalid_argument, "{} has a negative shape [{}, {}]", what, v.rows, v.cols);
  }
  if ((rows >= 0 && v.rows != rows) || (cols >= 0 && v.cols != cols)) {
    fail(Status::invalid_argument, "{} has shape [{}, {}], expected [{}, {}]", what, v.rows, v.cols,
         rows >= 0 ? fmt::format("{}", rows) : std::string("any"),
         cols >= 0 ? fmt::format("{}", cols) : std::string("any"));
  }
  if (v.row_stride != 0 && v.row_stride < v.cols) {
    fail(Status::invalid_argument, "{} has row stride {} < {} columns", what, v.row_stride, v.cols);
  }
  const int owner = device_of_pointer(v.data);
  if (owner < 0) {
    fail(Status::invalid_argument, "{} ({}) is not device memory: pass a CUDA device pointer", what,
         v.data);
  }
  if (owner != device) {
    fail(Status::invalid_argument, "{} lives on device {} but the call runs on device {}", what,
         owner, device);
  }
}

}  // namespace marlinrt::detail
