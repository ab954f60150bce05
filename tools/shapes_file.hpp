// The model-shapes file `marlinrt prebuild --shapes` and `marlinrt bench dense
// --shapes` read:
//   {"dtype": "bf16", "max_m": 4096,
//    "layers": [{"name": "qkv", "n": 6144, "k": 4096}, ...]}
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "marlinrt/dtype.hpp"

namespace marlinrt::cli {

struct LayerShape {
  std::string name;  // for messages only
  std::int64_t n = 0;
  std::int64_t k = 0;
};

struct ShapesFile {
  DType dtype = DType::bf16;  // activation dtype ("f16" or "bf16"; default bf16)
  std::int64_t max_m = 4096;  // largest token count served (default 4096)
  std::vector<LayerShape> layers;
};

// Throws Error(invalid_argument) naming the file and the offending field.
ShapesFile read_shapes_file(const std::filesystem::path& path);

// "f16"/"fp16"/"float16"/"half" or "bf16"/"bfloat16"; throws Error(invalid_argument) otherwise.
DType parse_activation_dtype(const std::string& text);

}  // namespace marlinrt::cli
