#include <catch2/catch.hpp>

#include <string>

#include "marlinrt/error.hpp"
#include "runtime/cuda_check.hpp"
#include "runtime/device_buffer.hpp"
#include "runtime/driver.hpp"
#include "runtime/launch.hpp"

using namespace marlinrt;
using namespace marlinrt::detail;

TEST_CASE("a missing driver library is reported as 'no CUDA driver found'", "[jit]") {
  Driver d;
  const DriverProbe probe = Driver::load("libmarlinrt-no-such-driver.so.1", d);
  CHECK_FALSE(probe.usable);
  CHECK(probe.status == Status::no_driver);
  CHECK_THAT(probe.reason,
             Catch::StartsWith("no CUDA driver found (libmarlinrt-no-such-driver.so.1: "));
  CHECK(probe.driver_version == 0);
  CHECK(d.init == nullptr);
  CHECK(d.launch_kernel == nullptr);
}

TEST_CASE("a library that is not a CUDA 12+ driver is refused with a reason", "[jit]") {
  Driver d;
  const DriverProbe probe = Driver::load("libc.so.6", d);
  CHECK_FALSE(probe.usable);
  CHECK(probe.status == Status::no_driver);
  CHECK_THAT(probe.reason, Catch::Contains("cuGetProcAddress_v2"));
  CHECK(d.mem_alloc == nullptr);
}

TEST_CASE("the process-wide probe never throws and is consistent with get()", "[jit]") {
  const DriverProbe& probe = Driver::probe();
  CHECK(&probe == &Driver::probe());  // loaded once
  CHECK_FALSE(probe.reason.empty());
  if (probe.usable) {
    CHECK(probe.status == Status::ok);
    CHECK(probe.device_count > 0);
    CHECK(probe.driver_version >= 12000);
    CHECK_NOTHROW(Driver::get());
    CHECK(Driver::get().launch_kernel != nullptr);
  } else {
    CHECK((probe.status == Status::no_driver || probe.status == Status::no_device));
    try {
      Driver::get();
      FAIL("get() returned a driver the probe calls unusable");
    } catch (const Error& e) {
      CHECK(e.status() == probe.status);
      CHECK(std::string(e.what()) == probe.reason);
    }
  }
}

TEST_CASE("without a driver, GPU entry points throw the probe's error instead of crashing",
          "[jit]") {
  const DriverProbe& probe = Driver::probe();
  if (probe.usable) {
    WARN("a CUDA driver is present here; the no-driver paths are not exercised");
    return;
  }
  if (probe.status == Status::no_driver) {
    CHECK_THAT(probe.reason, Catch::StartsWith("no CUDA driver found (libcuda.so.1: "));
  }
  auto throws_probe_error = [&](auto&& call, const char* what) {
    INFO(what);
    try {
      call();
      FAIL("did not throw");
    } catch (const Error& e) {
      CHECK(e.status() == probe.status);
      CHECK_THAT(e.what(), Catch::Contains(probe.status == Status::no_driver ? "no CUDA driver"
                                                                             : "CUDA driver"));
    }
  };
  throws_probe_error([] { current_device(); }, "current_device");
  throws_probe_error([] { device_info(0); }, "device_info");
  throws_probe_error([] { DeviceBuffer buffer(1024); }, "DeviceBuffer");
  throws_probe_error([] { DeviceBuffer buffer(0); }, "DeviceBuffer of 0 bytes");
  throws_probe_error([] { Event event; }, "Event");
  throws_probe_error([] { OwnedStream stream; }, "OwnedStream");
  // Default-constructed and moved-from buffers own nothing and need no driver.
  DeviceBuffer empty;
  DeviceBuffer moved(std::move(empty));
  CHECK(moved.size() == 0);
  CHECK(moved.ptr() == 0);
  CHECK(moved.device() == -1);
}

TEST_CASE("check() turns a failed driver result into cuda_error saying what failed", "[jit]") {
  CHECK_NOTHROW(check(CUDA_SUCCESS, "nothing"));
  try {
    check(CUDA_ERROR_INVALID_VALUE, "copying the moon to the host");
    FAIL("check did not throw");
  } catch (const Error& e) {
    CHECK(e.status() == Status::cuda_error);
    CHECK_THAT(e.what(), Catch::StartsWith("copying the moon to the host failed: "));
    if (Driver::probe().usable) {
      CHECK_THAT(e.what(), Catch::Contains("CUDA_ERROR_INVALID_VALUE"));
    } else {
      CHECK_THAT(e.what(), Catch::Contains("CUDA error 1"));
    }
  }
}
