#pragma once
#include <string>
namespace marlinrt::detail {
struct DriverProbe { bool usable = false; std::string reason; };
struct Driver { static const DriverProbe& probe(); };
}  // namespace marlinrt::detail
