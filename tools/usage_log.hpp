// Reading the usage log the runtime writes when MARLINRT_RECORD=path is set
// (one kernel key text per line), for `marlinrt prebuild --replay`.
#pragma once

#include <filesystem>
#include <vector>

#include "marlinrt/kernel_key.hpp"

namespace marlinrt::cli {

// Distinct keys in first-seen order. Blank lines and lines starting with '#' are
// skipped; surrounding whitespace is ignored. A bad line throws
// Error(invalid_argument) naming the file and line number.
std::vector<KernelKey> read_usage_log(const std::filesystem::path& path);

}  // namespace marlinrt::cli
