// Marks the plain-C++ helpers that both the host (runtime/, tests) and the NVRTC-compiled
// kernels use, so that the host tests run the kernels' own code.
#pragma once

#if defined(__CUDACC__)
#define MARLINRT_HOST_DEVICE __host__ __device__
#else
#define MARLINRT_HOST_DEVICE
#endif
