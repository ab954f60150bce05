#include <catch2/catch.hpp>

#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "marlinrt/error.hpp"
#include "marlinrt/kernel_key.hpp"
#include "runtime/embedded_templates.hpp"
#include "runtime/nvrtc_compiler.hpp"
#include "runtime/specialization.hpp"

using namespace marlinrt;
using namespace marlinrt::detail;

namespace {

// Sets an environment variable for one scope, restoring the old value after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

KernelKey selftest_key(int arch) {
  KernelKey k;
  k.kind = KernelKind::selftest;
  k.arch = arch;
  return k;
}

CompileResult compile_selftest(int arch, const NvrtcUserOptions& user = {}) {
  const KernelKey key = selftest_key(arch);
  const std::string unit = render_unit(key);
  const std::string name = key.to_string();
  const std::vector<std::string> options = nvrtc_options(arch, user);
  return compile(
      {.source = unit, .name = name, .headers = embedded_templates(), .options = options});
}

}  // namespace

TEST_CASE("the canonical NVRTC option list", "[jit]") {
  CHECK(nvrtc_options(90, {}) ==
        std::vector<std::string>{"--gpu-architecture=sm_90", "-std=c++17", "-default-device"});
  NvrtcUserOptions user;
  user.lineinfo = true;
  user.extra = {"-DX=1", "--extra-device-vectorization"};
  CHECK(nvrtc_options(86, user) ==
        std::vector<std::string>{"--gpu-architecture=sm_86", "-std=c++17", "-default-device",
                                 "-lineinfo", "-DX=1", "--extra-device-vectorization"});
}

TEST_CASE("NVRTC user options come from MARLINRT_LINEINFO and MARLINRT_NVRTC_OPTIONS", "[jit]") {
  {
    ScopedEnv lineinfo("MARLINRT_LINEINFO", nullptr);
    ScopedEnv extra("MARLINRT_NVRTC_OPTIONS", nullptr);
    const auto user = NvrtcUserOptions::from_env();
    CHECK_FALSE(user.lineinfo);
    CHECK(user.extra.empty());
  }
  {
    ScopedEnv lineinfo("MARLINRT_LINEINFO", "1");
    ScopedEnv extra("MARLINRT_NVRTC_OPTIONS", "  -DA=1\t--use_fast_math \n -DB ");
    const auto user = NvrtcUserOptions::from_env();
    CHECK(user.lineinfo);
    CHECK(user.extra == std::vector<std::string>{"-DA=1", "--use_fast_math", "-DB"});
  }
  {
    ScopedEnv lineinfo("MARLINRT_LINEINFO", "sometimes");
    try {
      NvrtcUserOptions::from_env();
      FAIL("accepted MARLINRT_LINEINFO=sometimes");
    } catch (const Error& e) {
      CHECK(e.status() == Status::invalid_argument);
      CHECK_THAT(e.what(), Catch::Contains("MARLINRT_LINEINFO"));
    }
  }
}

TEST_CASE("NVRTC reports its version", "[jit]") {
  const std::string& v = nvrtc_version();
  CHECK_THAT(v, Catch::Matches(R"(\d+\.\d+)"));
}

TEST_CASE("embedded templates include no system headers", "[jit]") {
  // NVRTC runs with no include path: every #include must name an embedded file.
  std::map<std::string, bool> names;
  for (const auto& file : embedded_templates()) names[std::string(file.name)] = true;
  REQUIRE(names.count("selftest.cuh") == 1);
  for (const auto& file : embedded_templates()) {
    INFO(file.name);
    CHECK(file.contents.find("#include <") == std::string_view::npos);
  }
}

TEST_CASE("the self-test unit compiles to a CUBIN for every supported GPU generation", "[jit]") {
  std::map<int, std::string> cubins;
  for (int arch : {80, 86, 89, 90}) {
    INFO("sm_" << arch);
    const CompileResult result = compile_selftest(arch);
    REQUIRE(result.cubin.size() > 4);
    CHECK(result.cubin.compare(0, 4,
                               "\x7f"
                               "ELF") == 0);
    CHECK(result.seconds > 0.0);
    cubins[arch] = result.cubin;
  }
  CHECK(cubins[80] != cubins[90]);
  CHECK(cubins[86] != cubins[89]);
}

TEST_CASE("a unit that does not compile yields compile_error with NVRTC's log", "[jit]") {
  const std::vector<std::string> options = nvrtc_options(80, {});
  const EmbeddedFile broken_header{"broken.cuh", "int marlinrt_broken = undeclared_thing;\n"};
  try {
    compile({.source = "#include \"broken.cuh\"\n",
             .name = "broken/sm_80",
             .headers = {&broken_header, 1},
             .options = options});
    FAIL("compiled a broken unit");
  } catch (const Error& e) {
    CHECK(e.status() == Status::compile_error);
    CHECK_THAT(e.what(), Catch::Contains("broken/sm_80"));
    CHECK_THAT(e.what(), Catch::Contains("undeclared_thing"));  // from NVRTC's log
    CHECK_THAT(e.what(), Catch::Contains("NVRTC log"));
  }
}

TEST_CASE("an option NVRTC rejects is a compile_error that points at the variable", "[jit]") {
  NvrtcUserOptions user;
  user.extra = {"--this-option-does-not-exist"};
  try {
    compile_selftest(80, user);
    FAIL("NVRTC accepted a nonexistent option");
  } catch (const Error& e) {
    CHECK(e.status() == Status::compile_error);
    CHECK_THAT(e.what(), Catch::Contains("MARLINRT_NVRTC_OPTIONS"));
  }
}
