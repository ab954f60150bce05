// `marlinrt info`: versions, driver, GPUs and their backend, the kernel cache.
#pragma once

namespace marlinrt::cli {

struct InfoOptions {
  bool json = false;  // machine-readable output
};

int run_info(const InfoOptions& options);

}  // namespace marlinrt::cli
