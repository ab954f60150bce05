// NVRTC: a rendered translation unit plus the embedded templates (as in-memory headers,
// so no include path is needed at run time) -> a CUBIN for one sm_XX.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/embedded_templates.hpp"

namespace marlinrt::detail {

class DiskCache;
struct CacheKey;

// The options a user adds: MARLINRT_LINEINFO=1 and MARLINRT_NVRTC_OPTIONS.
struct NvrtcUserOptions {
  bool lineinfo = false;
  std::vector<std::string> extra;  // MARLINRT_NVRTC_OPTIONS split on whitespace
  // Throws Error(invalid_argument) naming the variable on a junk MARLINRT_LINEINFO.
  static NvrtcUserOptions from_env();
};

// The canonical option list (part of every cache key): --gpu-architecture=sm_XX,
// -std=c++17, -default-device, [-lineinfo], then the user's extra options in order.
std::vector<std::string> nvrtc_options(int arch, const NvrtcUserOptions& user);
// The same for a target name: "sm_90", or "sm_90a" for kernels using arch-specific features.
std::vector<std::string> nvrtc_options(std::string_view target, const NvrtcUserOptions& user);

// "13.0": nvrtcVersion() of the NVRTC library loaded in this process.
const std::string& nvrtc_version();

struct CompileRequest {
  std::string_view source;                // the rendered unit
  std::string_view name;                  // e.g. the kernel key text; names the program in logs
  std::span<const EmbeddedFile> headers;  // every file the unit may #include, by file name
  std::span<const std::string> options;   // normally nvrtc_options(arch, ...)
  // On failure the evidence (source, options, log) goes to evidence->record_failure(*cache_key)
  // when both are set.
  DiskCache* evidence = nullptr;
  const CacheKey* cache_key = nullptr;
};

struct CompileResult {
  std::string cubin;  // an ELF image for the arch named in the options
  std::string log;    // NVRTC's log (warnings), usually empty
  double seconds = 0.0;
};

// Throws Error(compile_error) whose message holds the program name, the cache key text
// (when given) and NVRTC's full log.
CompileResult compile(const CompileRequest& request);

}  // namespace marlinrt::detail
