#include <catch2/catch.hpp>

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cache/cache_config.hpp"
#include "cache/disk_cache.hpp"
#include "marlinrt/error.hpp"
#include "marlinrt/runtime.hpp"
#include "runtime/driver.hpp"
#include "runtime/jit_benchmark.hpp"
#include "runtime/kernel_provider.hpp"
#include "runtime/module_registry.hpp"
#include "runtime/specialization.hpp"

using namespace marlinrt;
using namespace marlinrt::detail;
namespace fs = std::filesystem;

namespace {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "marlinrt-jit-test-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

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

CacheConfig cache_config(const fs::path& dir) {
  CacheConfig config;
  config.dir = dir;
  return config;
}

JitOptions jit_options(bool enabled = true) {
  JitOptions options;
  options.jit_enabled = enabled;
  return options;
}

KernelKey selftest_key(int arch) {
  KernelKey k;
  k.kind = KernelKind::selftest;
  k.arch = arch;
  return k;
}

bool is_elf(const std::string& bytes) {
  return bytes.size() > 4 && bytes.compare(0, 4,
                                           "\x7f"
                                           "ELF") == 0;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Sources whose one template does not compile: a test-only string, not an embedded file.
KernelSources broken_sources() {
  KernelSources sources = KernelSources::embedded();
  sources.headers.push_back({"broken.cuh", "int marlinrt_broken = marlinrt_undeclared_thing;\n"});
  sources.render = [](const KernelKey&) {
    return std::string(
        "#include \"broken.cuh\"\n"
        "extern \"C\" __global__ void marlinrt_kernel(int) {}\n");
  };
  return sources;
}

// Everything make_cache_key hashes, owned, so a test can vary one input at a time.
struct KeyMaterial {
  std::string label = "selftest/sm_90";
  std::vector<std::string> names = {"a.cuh", "b.cuh"};
  std::vector<std::string> bodies = {"// a\n", "// b\n"};
  std::string unit = "#include \"a.cuh\"\n";
  std::vector<std::string> options = {"--gpu-architecture=sm_90", "-std=c++17"};
  std::string nvrtc = "13.0";
  int arch = 90;
  int abi = kKernelAbiVersion;

  CacheKey key() const {
    std::vector<EmbeddedFile> files;
    for (std::size_t i = 0; i < names.size(); ++i) files.push_back({names[i], bodies[i]});
    return make_cache_key({.label = label,
                           .templates = files,
                           .unit = unit,
                           .options = options,
                           .nvrtc_version = nvrtc,
                           .arch = arch,
                           .abi_version = abi});
  }
};

}  // namespace

TEST_CASE("the cache key changes when any single compile input changes", "[jit]") {
  const KeyMaterial base;
  const CacheKey reference = base.key();
  CHECK(reference.id.size() == 32);
  CHECK(reference.label == "selftest/sm_90");
  CHECK(base.key().id == reference.id);  // deterministic

  std::set<std::string> ids = {reference.id};
  auto differs = [&](const char* what, auto&& change) {
    KeyMaterial m = base;
    change(m);
    INFO("changing " << what);
    CHECK(ids.insert(m.key().id).second);
  };
  differs("one template byte", [](KeyMaterial& m) { m.bodies[1] = "// c\n"; });
  differs("a template name", [](KeyMaterial& m) { m.names[0] = "z.cuh"; });
  differs("an added template", [](KeyMaterial& m) {
    m.names.push_back("c.cuh");
    m.bodies.push_back("");
  });
  differs("the rendered unit", [](KeyMaterial& m) { m.unit += " "; });
  differs("an option", [](KeyMaterial& m) { m.options.push_back("-lineinfo"); });
  differs("the option order", [](KeyMaterial& m) { std::swap(m.options[0], m.options[1]); });
  differs("the NVRTC version", [](KeyMaterial& m) { m.nvrtc = "13.1"; });
  differs("the target arch", [](KeyMaterial& m) { m.arch = 89; });
  differs("the kernel ABI version", [](KeyMaterial& m) { m.abi = kKernelAbiVersion + 1; });
  differs("the kernel key text", [](KeyMaterial& m) { m.label = "selftest/sm_89"; });
}

TEST_CASE("a provider's cache key covers its sources, options and target", "[jit]") {
  TempDir dir;
  DiskCache cache(cache_config(dir.path()));
  KernelProvider plain(cache, jit_options());
  const CacheKey key90 = plain.cache_key(selftest_key(90));
  CHECK(key90.label == "selftest/sm_90");
  CHECK_THAT(key90.text, Catch::Contains("target: sm_90"));
  CHECK_THAT(key90.text, Catch::Contains("nvrtc: " + nvrtc_version()));
  CHECK_THAT(key90.text, Catch::Contains("template selftest.cuh"));
  CHECK(plain.cache_key(selftest_key(80)).id != key90.id);

  JitOptions lineinfo = jit_options();
  lineinfo.nvrtc.lineinfo = true;
  KernelProvider with_lineinfo(cache, lineinfo);
  CHECK(with_lineinfo.cache_key(selftest_key(90)).id != key90.id);

  KernelProvider broken(cache, jit_options(), broken_sources());
  CHECK(broken.cache_key(selftest_key(90)).id != key90.id);
}

TEST_CASE("JIT options come from MARLINRT_JIT and MARLINRT_RECORD", "[jit]") {
  {
    ScopedEnv jit("MARLINRT_JIT", nullptr);
    ScopedEnv record("MARLINRT_RECORD", nullptr);
    const JitOptions o = JitOptions::from_env();
    CHECK(o.jit_enabled);
    CHECK(o.record_path.empty());
  }
  {
    ScopedEnv jit("MARLINRT_JIT", "off");
    ScopedEnv record("MARLINRT_RECORD", "/tmp/usage.txt");
    const JitOptions o = JitOptions::from_env();
    CHECK_FALSE(o.jit_enabled);
    CHECK(o.record_path == "/tmp/usage.txt");
  }
  {
    ScopedEnv jit("MARLINRT_JIT", "on");
    CHECK(JitOptions::from_env().jit_enabled);
  }
  {
    ScopedEnv jit("MARLINRT_JIT", "later");
    try {
      JitOptions::from_env();
      FAIL("accepted MARLINRT_JIT=later");
    } catch (const Error& e) {
      CHECK(e.status() == Status::invalid_argument);
      CHECK_THAT(e.what(), Catch::Contains("MARLINRT_JIT"));
    }
  }
}

TEST_CASE("a miss compiles and stores; the next lookup is a disk hit; counters follow", "[jit]") {
  TempDir dir;
  DiskCache cache(cache_config(dir.path()));
  REQUIRE(cache.usable());
  KernelProvider provider(cache, jit_options());
  const KernelKey key = selftest_key(80);

  const std::string cubin = provider.get_cubin(key);
  CHECK(is_elf(cubin));
  JitStats s = provider.stats();
  CHECK(s.misses == 1);
  CHECK(s.compiles == 1);
  CHECK(s.compile_failures == 0);
  CHECK(s.disk_hits == 0);
  CHECK(s.memory_hits == 0);
  CHECK(s.compile_seconds > 0.0);
  CHECK(cache.load(provider.cache_key(key)) == cubin);

  CHECK(provider.get_cubin(key) == cubin);
  s = provider.stats();
  CHECK(s.disk_hits == 1);
  CHECK(s.compiles == 1);
  CHECK(provider.prebuild(key) == PrebuildOutcome::already_cached);
  CHECK(provider.stats().compiles == 1);

  provider.reset_stats();
  s = provider.stats();
  CHECK(s.misses == 0);
  CHECK(s.compiles == 0);
  CHECK(s.disk_hits == 0);
  CHECK(s.compile_seconds == 0.0);
}

TEST_CASE("a compile failure keeps evidence and is not retried", "[jit]") {
  TempDir dir;
  DiskCache cache(cache_config(dir.path()));
  KernelProvider provider(cache, jit_options(), broken_sources());
  const KernelKey key = selftest_key(80);
  const CacheKey cache_key = provider.cache_key(key);

  std::string first_message;
  try {
    provider.get_cubin(key);
    FAIL("compiled a broken template");
  } catch (const Error& e) {
    CHECK(e.status() == Status::compile_error);
    first_message = e.what();
  }
  CHECK_THAT(first_message, Catch::Contains("selftest/sm_80"));             // the key
  CHECK_THAT(first_message, Catch::Contains(cache_key.id));                 // the cache key
  CHECK_THAT(first_message, Catch::Contains("marlinrt_undeclared_thing"));  // NVRTC's log
  JitStats s = provider.stats();
  CHECK(s.compile_failures == 1);
  CHECK(s.misses == 1);
  CHECK(s.compiles == 0);

  const fs::path evidence = dir.path() / "failed" / cache_key.id;
  REQUIRE(fs::is_directory(evidence));
  CHECK_THAT(read_file(evidence / "log.txt"), Catch::Contains("marlinrt_undeclared_thing"));
  CHECK_THAT(read_file(evidence / "source.cu"), Catch::Contains("#include \"broken.cuh\""));
  CHECK_THAT(read_file(evidence / "options.txt"), Catch::Contains("--gpu-architecture=sm_80"));

  // Remembered: the same error again, without another compile or another miss.
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      if (attempt == 0) {
        provider.get_cubin(key);
      } else {
        provider.prebuild(key);
      }
      FAIL("the second request succeeded");
    } catch (const Error& e) {
      CHECK(e.status() == Status::compile_error);
      CHECK(std::string(e.what()) == first_message);
    }
  }
  s = provider.stats();
  CHECK(s.compile_failures == 1);
  CHECK(s.misses == 1);
}

TEST_CASE("strict mode: a miss names the key; after prebuild the lookup works", "[jit]") {
  TempDir dir;
  DiskCache cache(cache_config(dir.path()));
  const KernelKey key = selftest_key(86);
  {
    KernelProvider strict(cache, jit_options(false));
    try {
      strict.get_cubin(key);
      FAIL("strict mode compiled on a miss");
    } catch (const Error& e) {
      CHECK(e.status() == Status::jit_disabled);
      CHECK_THAT(e.what(), Catch::Contains("selftest/sm_86"));
      CHECK_THAT(e.what(), Catch::Contains(dir.path().string()));
      CHECK_THAT(e.what(), Catch::Contains("marlinrt prebuild"));
    }
    CHECK(strict.stats().misses == 1);
    CHECK(strict.stats().compiles == 0);
    // prebuild is how a strict deployment fills the cache: strict mode does not apply.
    CHECK(strict.prebuild(key) == PrebuildOutcome::compiled);
    CHECK(strict.stats().compiles == 1);
    CHECK(is_elf(strict.get_cubin(key)));
  }
  KernelProvider fresh_strict(cache, jit_options(false));  // as in a new process
  CHECK(is_elf(fresh_strict.get_cubin(key)));
  CHECK(fresh_strict.stats().disk_hits == 1);
  CHECK(fresh_strict.stats().misses == 0);
  CHECK(fresh_strict.prebuild(key) == PrebuildOutcome::already_cached);
}

TEST_CASE("prebuild refuses a disabled cache", "[jit]") {
  TempDir dir;
  CacheConfig config = cache_config(dir.path());
  config.disabled = true;
  DiskCache cache(config);
  KernelProvider provider(cache, jit_options());
  try {
    provider.prebuild(selftest_key(90));
    FAIL("prebuild into a disabled cache");
  } catch (const Error& e) {
    CHECK(e.status() == Status::cache_error);
    CHECK_THAT(e.what(), Catch::Contains("selftest/sm_90"));
  }
  CHECK(provider.stats().compiles == 0);
}

TEST_CASE("concurrent first requests for one key compile it once", "[jit]") {
  TempDir dir;
  DiskCache cache(cache_config(dir.path()));
  KernelProvider provider(cache, jit_options());
  const KernelKey key = selftest_key(89);
  std::vector<std::string> results(4);
  std::vector<std::thread> threads;
  for (auto& result : results) {
    threads.emplace_back([&provider, &result, key] { result = provider.get_cubin(key); });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) CHECK(r == results[0]);
  CHECK(is_elf(results[0]));
  const JitStats s = provider.stats();
  CHECK(s.compiles == 1);
  CHECK(s.misses == 1);
  CHECK(s.disk_hits == 3);
}

TEST_CASE("processes sharing a cache compile a key once between them", "[jit]") {
  TempDir dir;
  const KernelKey key = selftest_key(90);
  constexpr int kChildren = 3;
  std::vector<pid_t> children;
  for (int i = 0; i < kChildren; ++i) {
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // Child: a process of its own with its own cache object and provider. The exit
      // code says how many compiles it did (or 100 on any failure).
      int code = 100;
      try {
        DiskCache cache(cache_config(dir.path()));
        KernelProvider provider(cache, jit_options());
        if (is_elf(provider.get_cubin(key))) code = static_cast<int>(provider.stats().compiles);
      } catch (...) {
      }
      _exit(code);
    }
    children.push_back(pid);
  }
  int total_compiles = 0;
  for (pid_t pid : children) {
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) != 100);
    total_compiles += WEXITSTATUS(status);
  }
  CHECK(total_compiles == 1);
}

TEST_CASE("MARLINRT_RECORD lists each requested key once", "[jit]") {
  // Recording happens on request, whether or not the kernel can be built: broken sources
  // keep this test free of real compiles.
  TempDir dir;
  DiskCache cache(cache_config(dir.path()));
  JitOptions options = jit_options();
  options.record_path = (dir.path() / "usage.log").string();
  KernelProvider provider(cache, options, broken_sources());
  for (int arch : {80, 80, 90}) CHECK_THROWS_AS(provider.get_cubin(selftest_key(arch)), Error);
  // prebuild replays a log; it does not write one.
  CHECK_THROWS_AS(provider.prebuild(selftest_key(86)), Error);
  CHECK(read_file(options.record_path) == "selftest/sm_80\nselftest/sm_90\n");
}

TEST_CASE("describe_cache_key and the public runtime entry points", "[jit]") {
  // Only takes effect if nothing in this process has created the process-wide cache yet;
  // the directory then lives as long as the process (the cache is never destroyed).
  static const TempDir dir;
  ScopedEnv cache_dir("MARLINRT_CACHE_DIR", dir.path().string().c_str());
  const CacheKey key = describe_cache_key(selftest_key(90));
  CHECK(key.label == "selftest/sm_90");
  CHECK(key.id.size() == 32);
  CHECK(kernel_abi_version() == kKernelAbiVersion);
  CHECK(std::string(version()).size() >= 5);  // "0.1.0"
  const JitStats before = jit_stats();
  CHECK(before.compile_seconds >= 0.0);
}

TEST_CASE("the kernel table finds every key it holds, while growing", "[jit]") {
  constexpr std::size_t kKeys = 2000;
  std::vector<LoadedKernel> kernels(kKeys);
  auto packed_of = [](std::size_t i) { return (i + 1) * 0x10001ull + (i << 40); };
  KernelTable table;
  const std::size_t initial_capacity = table.capacity();

  // A reader probes concurrently: it may miss a key not yet inserted but must never see
  // a wrong kernel.
  std::atomic<bool> done{false};
  std::atomic<std::size_t> wrong{0};
  std::thread reader([&] {
    while (!done.load()) {
      for (std::size_t i = 0; i < kKeys; i += 7) {
        const LoadedKernel* k = table.find(packed_of(i));
        if (k != nullptr && k != &kernels[i]) wrong.fetch_add(1);
      }
    }
  });
  for (std::size_t i = 0; i < kKeys; ++i) table.insert(packed_of(i), &kernels[i]);
  done = true;
  reader.join();

  CHECK(wrong.load() == 0);
  CHECK(table.size() == kKeys);
  CHECK(table.capacity() >= 2 * kKeys);
  CHECK(table.capacity() > initial_capacity);
  std::size_t found = 0;
  for (std::size_t i = 0; i < kKeys; ++i) found += table.find(packed_of(i)) == &kernels[i];
  CHECK(found == kKeys);
  CHECK(table.find(packed_of(kKeys)) == nullptr);
  CHECK(table.find(12345) == nullptr);
  CHECK_THROWS_AS(table.insert(0, &kernels[0]), Error);
}

TEST_CASE("get_kernel without a usable GPU throws the driver's error", "[jit]") {
  if (Driver::probe().usable) {
    WARN("a GPU is present; covered by the [gpu] tests");
    return;
  }
  TempDir dir;
  DiskCache cache(cache_config(dir.path()));
  KernelProvider provider(cache, jit_options());
  try {
    provider.get_kernel(selftest_key(90));
    FAIL("get_kernel worked without a GPU");
  } catch (const Error& e) {
    CHECK(e.status() == Driver::probe().status);
  }
  CHECK(provider.stats().compiles == 0);
}

TEST_CASE("bench jit measures a cold compile and a warm disk hit", "[jit]") {
  JitBenchmarkOptions options;
  options.arch = Driver::probe().usable ? 0 : 80;
  options.launches = 0;
  const JitBenchmarkResult r = run_jit_benchmark(options);
  CHECK(r.gpu == Driver::probe().usable);
  CHECK_THAT(r.target, Catch::StartsWith("sm_"));
  CHECK(r.nvrtc_version == nvrtc_version());
  CHECK(r.cold_compile_ms > 0.0);
  CHECK(r.warm_disk_hit_ms > 0.0);
  CHECK(r.warm_disk_hit_ms < r.cold_compile_ms);
  CHECK(r.launches == 0);
}
