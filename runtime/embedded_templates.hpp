// The kernel template sources, embedded at build time (cmake/embed_templates.cmake).
#pragma once

#include <span>
#include <string_view>

namespace marlinrt::detail {

struct EmbeddedFile {
  std::string_view name;      // file name inside kernel_templates/, e.g. "gemm.cuh"
  std::string_view contents;  // exact bytes
};

// Sorted by name. The bytes of every file enter every kernel's cache key.
std::span<const EmbeddedFile> embedded_templates() noexcept;

}  // namespace marlinrt::detail
