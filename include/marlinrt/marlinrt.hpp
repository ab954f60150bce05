// marlinrt: the whole public C++ API in one include.
//
//   #include <marlinrt/marlinrt.hpp>
//   auto w = marlinrt::prepare_nvfp4_linear(layer, marlinrt::DType::bf16, stream);
//   marlinrt::linear(stream, x, w, y);
//
// The C ABI lives in <marlinrt/marlinrt.h>.
#pragma once

#include "marlinrt/backend.hpp"
#include "marlinrt/dtype.hpp"
#include "marlinrt/error.hpp"
#include "marlinrt/kernel_key.hpp"
#include "marlinrt/linear.hpp"
#include "marlinrt/runtime.hpp"
