#include "tools/shapes_file.hpp"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "runtime/fail.hpp"

namespace marlinrt::cli {
namespace {

using detail::fail;

std::int64_t positive_integer(const nlohmann::json& value, const std::string& where,
                              const std::filesystem::path& path) {
  if (!value.is_number_integer() || value.get<std::int64_t>() <= 0) {
    fail(Status::invalid_argument, "shapes file {}: {} is {} (expected a positive integer)",
         path.string(), where, value.dump());
  }
  return value.get<std::int64_t>();
}

}  // namespace

DType parse_activation_dtype(const std::string& text) {
  if (text == "f16" || text == "fp16" || text == "float16" || text == "half") return DType::f16;
  if (text == "bf16" || text == "bfloat16") return DType::bf16;
  fail(Status::invalid_argument, "activation dtype '{}' is not supported (expected f16 or bf16)",
       text);
}

ShapesFile read_shapes_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) fail(Status::invalid_argument, "cannot open shapes file {}", path.string());
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::parse_error& e) {
    fail(Status::invalid_argument, "shapes file {} is not valid JSON: {}", path.string(), e.what());
  }
  const char* kExample =
      R"({"dtype": "bf16", "max_m": 4096, "layers": [{"name": "qkv", "n": 6144, "k": 4096}]})";
  if (!doc.is_object()) {
    fail(Status::invalid_argument, "shapes file {}: expected a JSON object like {}", path.string(),
         kExample);
  }
  for (const auto& [name, value] : doc.items()) {
    if (name != "dtype" && name != "max_m" && name != "layers") {
      fail(Status::invalid_argument,
           "shapes file {}: unknown field '{}' (expected dtype, max_m and layers)", path.string(),
           name);
    }
  }
  ShapesFile shapes;
  if (doc.contains("dtype")) {
    if (!doc["dtype"].is_string()) {
      fail(Status::invalid_argument, "shapes file {}: dtype must be a string (\"f16\" or \"bf16\")",
           path.string());
    }
    try {
      shapes.dtype = parse_activation_dtype(doc["dtype"].get<std::string>());
    } catch (const Error& e) {
      fail(Status::invalid_argument, "shapes file {}: {}", path.string(), e.what());
    }
  }
  if (doc.contains("max_m")) shapes.max_m = positive_integer(doc["max_m"], "max_m", path);
  if (!doc.contains("layers") || !doc["layers"].is_array() || doc["layers"].empty()) {
    fail(Status::invalid_argument, "shapes file {}: needs a non-empty \"layers\" array, e.g. {}",
         path.string(), kExample);
  }
  std::size_t index = 0;
  for (const auto& layer : doc["layers"]) {
    const std::string where = fmt::format("layers[{}]", index++);
    if (!layer.is_object() || !layer.contains("n") || !layer.contains("k")) {
      fail(Status::invalid_argument,
           "shapes file {}: {} must be an object with \"n\" and \"k\" (and optionally \"name\")",
           path.string(), where);
    }
    LayerShape shape;
    shape.name = layer.contains("name") && layer["name"].is_string()
                     ? layer["name"].get<std::string>()
                     : where;
    shape.n = positive_integer(layer["n"], where + ".n", path);
    shape.k = positive_integer(layer["k"], where + ".k", path);
    shapes.layers.push_back(std::move(shape));
  }
  return shapes;
}

}  // namespace marlinrt::cli
