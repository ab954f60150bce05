// Test runner: Catch2 v2 with one addition — a run that selects only [gpu]
// tests exits 77 ("skipped" for ctest) when no GPU can be used here.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <string_view>

#include "tests/gpu_guard.hpp"

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "[gpu]" && !marlinrt::test::gpu_available()) {
      std::printf("no usable GPU here (%s): [gpu] tests skipped\n",
                  marlinrt::test::gpu_unavailable_reason().c_str());
      return 77;
    }
  }
  return Catch::Session().run(argc, argv);
}
