#include "tests/gpu_guard.hpp"

#include "runtime/driver.hpp"

namespace marlinrt::test {

bool gpu_available() { return detail::Driver::probe().usable; }
std::string gpu_unavailable_reason() { return detail::Driver::probe().reason; }

}  // namespace marlinrt::test
