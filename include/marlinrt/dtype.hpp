// Element types of the tensors marlinrt reads and writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace marlinrt {

enum class DType : std::uint8_t {
  f16 = 0,
  bf16 = 1,
  f32 = 2,
  u8 = 3,    // packed E2M1 pairs: element 2i in the low nibble
  e4m3 = 4,  // float8_e4m3fn
  i32 = 5,
};

constexpr std::size_t dtype_size(DType t) noexcept {
  switch (t) {
    case DType::f16:
    case DType::bf16:
      return 2;
    case DType::f32:
    case DType::i32:
      return 4;
    case DType::u8:
    case DType::e4m3:
      return 1;
  }
  return 0;
}

constexpr std::string_view dtype_name(DType t) noexcept {
  switch (t) {
    case DType::f16:
      return "f16";
    case DType::bf16:
      return "bf16";
    case DType::f32:
      return "f32";
    case DType::u8:
      return "u8";
    case DType::e4m3:
      return "e4m3";
    case DType::i32:
      return "i32";
  }
  return "?";
}

// A row-major matrix view (rank 1 or 2) of device or host memory. Does not own.
// row_stride is in elements; 0 means contiguous (= cols).
struct MatrixView {
  const void* data = nullptr;
  DType dtype = DType::f16;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t row_stride = 0;

  std::int64_t stride() const noexcept { return row_stride ? row_stride : cols; }
};

// A writable view: same shape rules as MatrixView.
struct MutableMatrixView {
  void* data = nullptr;
  DType dtype = DType::f16;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t row_stride = 0;

  std::int64_t stride() const noexcept { return row_stride ? row_stride : cols; }
  operator MatrixView() const noexcept { return {data, dtype, rows, cols, row_stride}; }
};

}  // namespace marlinrt
