// Human-readable byte counts for listings ("1.5 MiB").
#pragma once

#include <cstdint>
#include <string>

namespace marlinrt::cli {

// Binary units with one decimal above 1 KiB, e.g. "512 B", "1.5 MiB", "2.0 GiB".
std::string format_bytes(std::uint64_t bytes);

}  // namespace marlinrt::cli
