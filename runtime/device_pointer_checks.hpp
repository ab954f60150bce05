// Argument checks shared by every public entry that takes device tensors.
#pragma once

#include <string_view>

#include "marlinrt/dtype.hpp"

namespace marlinrt::detail {

// Throws Error(invalid_argument) unless `view` is a non-null device matrix of `dtype`
// and shape [rows, cols] (a negative expectation skips that check) on device
// `device`, with row_stride >= cols. `what` names the argument in messages.
void check_device_matrix(std::string_view what, const MatrixView& view, DType dtype,
                         std::int64_t rows, std::int64_t cols, int device);

// Throws unless `ptr` is aligned to `bytes`.
void check_alignment(std::string_view what, const void* ptr, std::size_t bytes);

// The device ordinal that owns `ptr`, or -1 for host or unknown memory.
int device_of_pointer(const void* ptr);

}  // namespace marlinrt::detail
