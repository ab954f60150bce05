#include "tools/usage_log.hpp"

#include <cstdint>
#include <fstream>
#include <string>
#include <unordered_set>

#include "runtime/fail.hpp"

namespace marlinrt::cli {

std::vector<KernelKey> read_usage_log(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) {
    detail::fail(Status::invalid_argument, "cannot open usage log {}", path.string());
  }
  std::vector<KernelKey> keys;
  std::unordered_set<std::uint64_t> seen;  // packed keys: injective
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    const auto last = line.find_last_not_of(" \t\r");
    const std::string text = line.substr(first, last - first + 1);
    KernelKey key;
    try {
      key = KernelKey::parse(text);
    } catch (const Error& e) {
      detail::fail(Status::invalid_argument, "usage log {} line {}: {}", path.string(), number,
                   e.what());
    }
    if (seen.insert(key.packed()).second) keys.push_back(key);
  }
  return keys;
}

}  // namespace marlinrt::cli
