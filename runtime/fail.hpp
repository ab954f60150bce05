// Throwing a marlinrt::Error with a formatted message, in one line.
#pragma once

#include <fmt/format.h>

#include "marlinrt/error.hpp"

namespace marlinrt::detail {

template <typename... Args>
[[noreturn]] void fail(Status status, fmt::format_string<Args...> format, Args&&... args) {
  throw Error(status, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace marlinrt::detail
