#include "runtime/driver.hpp"
namespace marlinrt::detail {
const DriverProbe& Driver::probe() { static DriverProbe p{false, "driver loader not written yet"}; return p; }
}  // namespace marlinrt::detail
