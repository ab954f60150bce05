#include "runtime/nvrtc_compiler.hpp"

#include <nvrtc.h>

#include <chrono>
#include <cstdlib>

#include <fmt/format.h>

#include "cache/cache_config.hpp"
#include "cache/cache_key.hpp"
#include "cache/disk_cache.hpp"
#include "marlinrt/kernel_key.hpp"
#include "runtime/fail.hpp"

namespace marlinrt::detail {
namespace {

std::string_view env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

std::vector<std::string> split_whitespace(std::string_view text) {
  std::vector<std::string> words;
  std::size_t i = 0;
  auto is_space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  };
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i])) ++i;
    const std::size_t start = i;
    while (i < text.size() && !is_space(text[i])) ++i;
    if (i > start) words.emplace_back(text.substr(start, i - start));
  }
  return words;
}

// Everything a failed compile leaves behind, in one message.
[[noreturn]] void compile_failed(const CompileRequest& request, std::string_view what,
                                 std::string_view log) {
  if (request.evidence != nullptr && request.cache_key != nullptr) {
    std::string options;
    for (const auto& o : request.options) options += o + "\n";
    request.evidence->record_failure(*request.cache_key, request.source, options, log);
  }
  std::string message = fmt::format("NVRTC could not compile kernel {}: {}", request.name, what);
  if (request.cache_key != nullptr) {
    message += fmt::format("\ncache key {}:\n{}", request.cache_key->id, request.cache_key->text);
    if (!message.empty() && message.back() != '\n') message += '\n';
  } else {
    message += '\n';
  }
  message += fmt::format("NVRTC log:\n{}", log.empty() ? "(empty)" : log);
  if (request.evidence != nullptr && request.cache_key != nullptr) {
    message += "\n(the source, options and log are kept in the kernel cache's failed/ folder)";
  }
  throw Error(Status::compile_error, message);
}

// Owns an nvrtcProgram.
class Program {
 public:
  explicit Program(nvrtcProgram p) : program_(p) {}
  ~Program() { nvrtcDestroyProgram(&program_); }
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;
  nvrtcProgram get() const { return program_; }

  std::string log() const {
    std::size_t size = 0;
    if (nvrtcGetProgramLogSize(program_, &size) != NVRTC_SUCCESS || size <= 1) return {};
    std::string text(size, '\0');
    if (nvrtcGetProgramLog(program_, text.data()) != NVRTC_SUCCESS) return {};
    text.resize(size - 1);  // the size counts the terminating NUL
    return text;
  }

 private:
  nvrtcProgram program_;
};

}  // namespace

NvrtcUserOptions NvrtcUserOptions::from_env() {
  NvrtcUserOptions options;
  options.lineinfo = parse_switch(env("MARLINRT_LINEINFO"), "MARLINRT_LINEINFO");
  options.extra = split_whitespace(env("MARLINRT_NVRTC_OPTIONS"));
  return options;
}

std::vector<std::string> nvrtc_options(int arch, const NvrtcUserOptions& user) {
  // arch_name() of a validated arch; a bad one would fail in NVRTC with a clear log anyway.
  return nvrtc_options(arch_name(arch), user);
}

std::vector<std::string> nvrtc_options(std::string_view target, const NvrtcUserOptions& user) {
  std::vector<std::string> options = {
      fmt::format("--gpu-architecture={}", target),
      "-std=c++17",
      "-default-device",
  };
  if (user.lineinfo) options.emplace_back("-lineinfo");
  options.insert(options.end(), user.extra.begin(), user.extra.end());
  return options;
}

const std::string& nvrtc_version() {
  static const std::string version = [] {
    int major = 0, minor = 0;
    if (nvrtcVersion(&major, &minor) != NVRTC_SUCCESS) {
      fail(Status::internal, "nvrtcVersion failed: the NVRTC library is unusable");
    }
    return fmt::format("{}.{}", major, minor);
  }();
  return version;
}

CompileResult compile(const CompileRequest& request) {
  const auto start = std::chrono::steady_clock::now();

  // NVRTC wants NUL-terminated strings; the spans need not be.
  const std::string source(request.source);
  const std::string name = fmt::format("{}.cu", request.name);
  std::vector<std::string> header_names, header_bodies;
  header_names.reserve(request.headers.size());
  header_bodies.reserve(request.headers.size());
  for (const auto& h : request.headers) {
    header_names.emplace_back(h.name);
    header_bodies.emplace_back(h.contents);
  }
  std::vector<const char*> names, bodies, options;
  for (const auto& n : header_names) names.push_back(n.c_str());
  for (const auto& b : header_bodies) bodies.push_back(b.c_str());
  for (const auto& o : request.options) options.push_back(o.c_str());

  nvrtcProgram raw = nullptr;
  nvrtcResult result =
      nvrtcCreateProgram(&raw, source.c_str(), name.c_str(), static_cast<int>(bodies.size()),
                         bodies.data(), names.data());
  if (result != NVRTC_SUCCESS) {
    compile_failed(request, fmt::format("nvrtcCreateProgram: {}", nvrtcGetErrorString(result)), "");
  }
  Program program(raw);

  result = nvrtcCompileProgram(program.get(), static_cast<int>(options.size()), options.data());
  std::string log = program.log();
  if (result != NVRTC_SUCCESS) {
    std::string what = nvrtcGetErrorString(result);
    if (result == NVRTC_ERROR_INVALID_OPTION) {
      what += " (check MARLINRT_NVRTC_OPTIONS)";
    }
    compile_failed(request, what, log);
  }

  std::size_t size = 0;
  result = nvrtcGetCUBINSize(program.get(), &size);
  if (result != NVRTC_SUCCESS || size == 0) {
    compile_failed(request,
                   fmt::format("no CUBIN was produced ({}); the options must name a real "
                               "architecture, --gpu-architecture=sm_XX",
                               nvrtcGetErrorString(result)),
                   log);
  }
  CompileResult out;
  out.cubin.resize(size);
  result = nvrtcGetCUBIN(program.get(), out.cubin.data());
  if (result != NVRTC_SUCCESS) {
    compile_failed(request, fmt::format("nvrtcGetCUBIN: {}", nvrtcGetErrorString(result)), log);
  }
  out.log = std::move(log);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace marlinrt::detail
