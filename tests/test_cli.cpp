// The `marlinrt` command, run as a separate process with its own temporary
// MARLINRT_CACHE_DIR (host tests: NVRTC compiles, no GPU needed).
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "marlinrt/runtime.hpp"
#include "tests/gpu_guard.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;

const char* const kToolPath = MARLINRT_TOOL_PATH;

struct TempDir {
  fs::path path;
  TempDir() {
    char pattern[] = "/tmp/marlinrt-cli-test-XXXXXX";
    const char* made = mkdtemp(pattern);
    REQUIRE(made != nullptr);
    path = made;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct ToolResult {
  int exit_code = -1;
  std::string out, err;
};

// A started `marlinrt` process whose output goes to files in `dir`.
class ToolProcess {
 public:
  ToolProcess(const std::vector<std::string>& args, const fs::path& cache_dir,
              const std::vector<std::string>& extra_env, const fs::path& dir, int index)
      : out_path_(dir / ("out-" + std::to_string(index))),
        err_path_(dir / ("err-" + std::to_string(index))) {
    // Everything exec needs is built before fork(): the child only dup2s and execs.
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::string_view(*e).substr(0, 9) != "MARLINRT_") env.emplace_back(*e);
    }
    env.push_back("MARLINRT_CACHE_DIR=" + cache_dir.string());
    for (const auto& e : extra_env) env.push_back(e);
    std::vector<std::string> argv_strings{kToolPath};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv, envp;
    for (auto& s : argv_strings) argv.push_back(s.data());
    argv.push_back(nullptr);
    for (auto& s : env) envp.push_back(s.data());
    envp.push_back(nullptr);
    const int out_fd = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err_fd = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(out_fd >= 0);
    REQUIRE(err_fd >= 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out_fd, STDOUT_FILENO);
      ::dup2(err_fd, STDERR_FILENO);
      ::execve(kToolPath, argv.data(), envp.data());
      ::_exit(127);
    }
    ::close(out_fd);
    ::close(err_fd);
    REQUIRE(pid_ > 0);
  }

  ToolResult wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    ToolResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = read_file(out_path_);
    r.err = read_file(err_path_);
    return r;
  }

 private:
  fs::path out_path_, err_path_;
  pid_t pid_ = -1;
};

// One test's cache directory and a runner for the tool against it.
struct ToolFixture {
  TempDir cache;
  TempDir logs;
  int runs = 0;

  ToolResult run(const std::vector<std::string>& args,
                 const std::vector<std::string>& extra_env = {}) {
    ToolProcess p(args, cache.path, extra_env, logs.path, runs++);
    ToolResult r = p.wait();
    // Shown with the next assertion if it fails.
    UNSCOPED_INFO("marlinrt " << args.front() << " exited " << r.exit_code << "; stdout:\n"
                              << r.out << "\nstderr:\n"
                              << r.err);
    return r;
  }
  ToolProcess start(const std::vector<std::string>& args) {
    return ToolProcess(args, cache.path, {}, logs.path, runs++);
  }
};

bool tool_built() {
  if (std::string_view(kToolPath).empty()) {
    WARN("skipped: the marlinrt command is not built (MARLINRT_BUILD_TOOLS=OFF)");
    return false;
  }
  return true;
}

// The counts in prebuild's summary line.
struct PrebuildSummary {
  int kernels = -1, compiled = -1, cached = -1, failed = -1;
};

PrebuildSummary parse_summary(const std::string& out) {
  static const std::regex line(
      R"(prebuild: (\d+) kernels? for [^:]*: (\d+) compiled, (\d+) already cached, (\d+) failed)");
  std::smatch m;
  PrebuildSummary s;
  if (std::regex_search(out, m, line)) {
    s.kernels = std::stoi(m[1]);
    s.compiled = std::stoi(m[2]);
    s.cached = std::stoi(m[3]);
    s.failed = std::stoi(m[4]);
  }
  return s;
}

std::vector<fs::path> entry_files(const fs::path& cache_dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(cache_dir / "v1", ec), end; !ec && it != end;
       it.increment(ec)) {
    if (it->is_regular_file() && it->path().extension() == ".entry") files.push_back(it->path());
  }
  return files;
}

}  // namespace

TEST_CASE("marlinrt info works without a GPU and reports the cache", "[cli]") {
  if (!tool_built()) return;
  ToolFixture tool;
  const ToolResult text = tool.run({"info"});
  REQUIRE(text.exit_code == 0);
  CHECK_THAT(text.out, Catch::Contains(marlinrt::version()));
  CHECK_THAT(text.out, Catch::Contains(tool.cache.path.string()));
  CHECK_THAT(text.out, Catch::Contains("NVRTC"));
  if (!marlinrt::test::gpu_available()) {
    CHECK_THAT(text.out, Catch::Contains(marlinrt::test::gpu_unavailable_reason()));
  }

  const ToolResult json = tool.run({"info", "--json"});
  REQUIRE(json.exit_code == 0);
  const auto doc = nlohmann::json::parse(json.out);
  CHECK(doc.at("version") == marlinrt::version());
  CHECK(doc.at("kernel_abi_version") == marlinrt::kernel_abi_version());
  CHECK(doc.at("cache").at("dir") == tool.cache.path.string());
  CHECK(doc.at("cache").at("usable") == true);
  CHECK(doc.at("driver").at("usable") == marlinrt::test::gpu_available());
  CHECK(doc.at("gpus").is_array());
  if (!marlinrt::test::gpu_available()) CHECK(doc.at("gpus").empty());
  for (const auto& gpu : doc.at("gpus")) {
    CHECK(gpu.at("compute_capability").get<int>() > 0);
    CHECK(!gpu.at("backend").get<std::string>().empty());
  }
}

TEST_CASE("marlinrt prebuild compiles once, then reports the kernel cached", "[cli]") {
  if (!tool_built()) return;
  ToolFixture tool;
  const ToolResult first = tool.run({"prebuild", "--arch", "sm_90", "repack_weights/sm_90"});
  REQUIRE(first.exit_code == 0);
  const auto s1 = parse_summary(first.out);
  CHECK(s1.kernels == 1);
  CHECK(s1.compiled == 1);
  CHECK(s1.cached == 0);
  CHECK(s1.failed == 0);

  const ToolResult second = tool.run({"prebuild", "--arch", "sm_90", "repack_weights/sm_90"});
  REQUIRE(second.exit_code == 0);
  const auto s2 = parse_summary(second.out);
  CHECK(s2.compiled == 0);
  CHECK(s2.cached == 1);

  const ToolResult list = tool.run({"cache", "list"});
  REQUIRE(list.exit_code == 0);
  CHECK_THAT(list.out, Catch::Contains("repack_weights/sm_90"));
  CHECK_THAT(list.out, Catch::Contains("1 entry"));

  const ToolResult stats = tool.run({"cache", "stats", "--json"});
  REQUIRE(stats.exit_code == 0);
  const auto doc = nlohmann::json::parse(stats.out);
  CHECK(doc.at("entries") == 1);
  CHECK(doc.at("invalid_entries") == 0);
  CHECK(doc.at("bytes").get<std::uint64_t>() > 0);
  CHECK(doc.at("entries_by_arch").at("sm_90") == 1);

  // explain: where the entry is, and whether a lookup hits.
  const ToolResult hit = tool.run({"explain", "repack_weights/sm_90"});
  CHECK(hit.exit_code == 0);
  CHECK_THAT(hit.out, Catch::Contains(entry_files(tool.cache.path).at(0).string()));
  CHECK_THAT(hit.out, Catch::Contains("lookup:    hit"));
  const ToolResult miss = tool.run({"explain", "repack_scales/sm_90"});
  CHECK(miss.exit_code == 1);
  CHECK_THAT(miss.out, Catch::Contains("lookup:    miss"));
  CHECK_THAT(miss.out, Catch::Contains("marlinrt prebuild repack_scales/sm_90"));

  // A replayed usage log: comments, blanks and repeats skipped; the kernel is cached.
  const fs::path log = tool.logs.path / "usage.log";
  std::ofstream(log) << "# recorded by MARLINRT_RECORD\n\n  repack_weights/sm_90  \n"
                     << "repack_weights/sm_90\n";
  const ToolResult replay = tool.run({"prebuild", "--replay", log.string()});
  REQUIRE(replay.exit_code == 0);
  CHECK(parse_summary(replay.out).kernels == 1);
  CHECK(parse_summary(replay.out).cached == 1);
}

TEST_CASE("marlinrt prebuild expands shapes files and arch-less keys", "[cli]") {
  if (!tool_built()) return;
  ToolFixture tool;
  const fs::path shapes = tool.logs.path / "shapes.json";
  std::ofstream(shapes) << R"({"dtype": "bf16", "max_m": 256,
                              "layers": [{"name": "qkv", "n": 6144, "k": 4096}]})";
  const ToolResult dry =
      tool.run({"prebuild", "--dry-run", "--arch", "sm_80,sm_90", "--shapes", shapes.string()});
  REQUIRE(dry.exit_code == 0);
  for (const char* key : {"repack_weights/sm_80", "repack_scales/sm_80", "repack_weights/sm_90",
                          "repack_scales/sm_90"}) {
    CHECK_THAT(dry.out, Catch::Contains(key));
  }
  CHECK(std::regex_search(dry.out, std::regex(R"(gemm/e2m1/g16/bf16/dense/\S+/sm_90)")));
  CHECK(std::regex_search(dry.out, std::regex(R"(gemm/e2m1/g16/bf16/dense/\S+/sm_80)")));
  CHECK(entry_files(tool.cache.path).empty());  // a dry run compiles nothing

  const ToolResult partial =
      tool.run({"prebuild", "--dry-run", "--arch", "sm_86,sm_89", "selftest"});
  REQUIRE(partial.exit_code == 0);
  CHECK(partial.out == "selftest/sm_86\nselftest/sm_89\n");

  std::ofstream(shapes) << R"({"dtype": "fp8", "layers": [{"n": 64, "k": 64}]})";
  const ToolResult bad = tool.run({"prebuild", "--arch", "sm_90", "--shapes", shapes.string()});
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.err, Catch::Contains(shapes.string()));
  CHECK_THAT(bad.err, Catch::Contains("fp8"));
}

TEST_CASE("marlinrt rejects bad keys, archs and usage with exit status 2", "[cli]") {
  if (!tool_built()) return;
  ToolFixture tool;
  const ToolResult bad_key =
      tool.run({"prebuild", "gemm/e2m1/g16/bf16/dense/t100x128/m4/s4/w256/sm_90"});
  CHECK(bad_key.exit_code == 2);
  CHECK_THAT(bad_key.err, Catch::StartsWith("marlinrt: error: "));
  CHECK_THAT(bad_key.err, Catch::Contains("tile"));

  const ToolResult unknown_kind = tool.run({"prebuild", "nonsense/sm_90"});
  CHECK(unknown_kind.exit_code == 2);
  CHECK_THAT(unknown_kind.err, Catch::Contains("invalid kernel key 'nonsense/sm_90'"));

  const ToolResult bad_arch = tool.run({"prebuild", "--arch", "sm_75", "repack_weights"});
  CHECK(bad_arch.exit_code == 2);
  CHECK_THAT(bad_arch.err, Catch::Contains("sm_75"));

  const ToolResult junk_arch = tool.run({"prebuild", "--arch", "hopper", "repack_weights/sm_90"});
  CHECK(junk_arch.exit_code == 2);
  CHECK_THAT(junk_arch.err, Catch::Contains("hopper"));

  const ToolResult nothing = tool.run({"prebuild"});
  CHECK(nothing.exit_code == 2);
  CHECK_THAT(nothing.err, Catch::Contains("nothing to build"));
  CHECK_THAT(nothing.err, Catch::Contains("--help"));

  const ToolResult no_command = tool.run({"frobnicate"});
  CHECK(no_command.exit_code == 2);
  CHECK_THAT(no_command.err, Catch::Contains("--help"));

  const ToolResult junk_env = tool.run({"cache", "stats"}, {"MARLINRT_CACHE_MAX_BYTES=lots"});
  CHECK(junk_env.exit_code == 2);
  CHECK_THAT(junk_env.err, Catch::Contains("MARLINRT_CACHE_MAX_BYTES"));

  const ToolResult disabled =
      tool.run({"prebuild", "selftest/sm_80"}, {"MARLINRT_CACHE_DISABLE=1"});
  CHECK(disabled.exit_code == 2);
  CHECK_THAT(disabled.err, Catch::Contains("MARLINRT_CACHE_DISABLE"));

  CHECK(entry_files(tool.cache.path).empty());  // nothing was compiled for bad input
}

TEST_CASE("marlinrt explain names the key part that makes a lookup miss", "[cli]") {
  if (!tool_built()) return;
  ToolFixture tool;
  const std::string option = "MARLINRT_NVRTC_OPTIONS=-DMARLINRT_EXPLAIN_TEST=1";
  REQUIRE(tool.run({"prebuild", "selftest/sm_80"}, {option}).exit_code == 0);
  const ToolResult same = tool.run({"explain", "selftest/sm_80"}, {option});
  CHECK(same.exit_code == 0);
  CHECK_THAT(same.out, Catch::Contains("-DMARLINRT_EXPLAIN_TEST=1"));  // a key part
  const ToolResult other = tool.run({"explain", "selftest/sm_80"});
  CHECK(other.exit_code == 1);
  CHECK_THAT(other.out, Catch::Contains("An entry for the same kernel exists under another key"));
  CHECK(std::regex_search(other.out, std::regex(R"(\n  - [^\n]*-DMARLINRT_EXPLAIN_TEST=1)")));
  const ToolResult strict = tool.run({"explain", "selftest/sm_80"}, {"MARLINRT_JIT=off"});
  CHECK_THAT(strict.out, Catch::Contains("MARLINRT_JIT=off"));
}

TEST_CASE("marlinrt cache verify names a damaged entry; prebuild then replaces it", "[cli]") {
  if (!tool_built()) return;
  ToolFixture tool;
  REQUIRE(tool.run({"prebuild", "selftest/sm_80"}).exit_code == 0);
  REQUIRE(tool.run({"cache", "verify"}).exit_code == 0);
  const auto files = entry_files(tool.cache.path);
  REQUIRE(files.size() == 1);
  {
    std::fstream f(files[0], std::ios::in | std::ios::out | std::ios::binary);
    const auto size = static_cast<std::streamoff>(fs::file_size(files[0]));
    f.seekg(size - 7);
    char byte = 0;
    f.read(&byte, 1);
    byte = static_cast<char>(byte ^ 0x10);
    f.seekp(size - 7);
    f.write(&byte, 1);
  }
  const ToolResult verify = tool.run({"cache", "verify"});
  CHECK(verify.exit_code == 1);
  CHECK_THAT(verify.err, Catch::Contains(files[0].stem().string()));
  CHECK_THAT(verify.out, Catch::Contains("1 invalid"));

  const ToolResult rebuild = tool.run({"prebuild", "selftest/sm_80"});
  REQUIRE(rebuild.exit_code == 0);
  CHECK(parse_summary(rebuild.out).compiled == 1);
  CHECK(tool.run({"cache", "verify"}).exit_code == 0);
}

TEST_CASE("marlinrt prebuild from 8 processes compiles each kernel exactly once", "[cli]") {
  if (!tool_built()) return;
  ToolFixture tool;
  const std::vector<std::string> args{"prebuild", "-j", "2", "selftest/sm_80", "selftest/sm_90"};
  std::vector<ToolProcess> processes;
  for (int i = 0; i < 8; ++i) processes.push_back(tool.start(args));
  int compiled = 0, cached = 0;
  for (auto& p : processes) {
    const ToolResult r = p.wait();
    INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
    REQUIRE(r.exit_code == 0);
    const auto s = parse_summary(r.out);
    REQUIRE(s.kernels == 2);
    CHECK(s.failed == 0);
    compiled += s.compiled;
    cached += s.cached;
  }
  CHECK(compiled == 2);
  CHECK(cached == 14);
  CHECK(entry_files(tool.cache.path).size() == 2);
  CHECK(tool.run({"cache", "verify"}).exit_code == 0);
}

TEST_CASE("marlinrt cache gc runs safely while other processes read the cache", "[cli]") {
  if (!tool_built()) return;
  ToolFixture tool;
  REQUIRE(tool.run({"prebuild", "selftest/sm_80", "selftest/sm_90"}).exit_code == 0);
  // Garbage for gc to remove while the readers work: a damaged copy of an entry
  // under another id.
  const auto files = entry_files(tool.cache.path);
  REQUIRE(files.size() == 2);
  for (int round = 0; round < 4; ++round) {
    const fs::path junk = files[0].parent_path() / ("00000000000000000000000000000" +
                                                    std::to_string(100 + round) + ".entry");
    fs::copy_file(files[0], junk, fs::copy_options::overwrite_existing);
    fs::resize_file(junk, fs::file_size(junk) / 2);
    std::vector<ToolProcess> gcs, readers;
    for (int i = 0; i < 2; ++i) gcs.push_back(tool.start({"cache", "gc"}));
    for (int i = 0; i < 3; ++i) {
      readers.push_back(tool.start({"prebuild", "selftest/sm_80", "selftest/sm_90"}));
    }
    readers.push_back(tool.start({"cache", "list"}));
    for (auto& p : gcs) {
      const ToolResult r = p.wait();
      INFO("gc stdout:\n" << r.out << "\nstderr:\n" << r.err);
      CHECK(r.exit_code == 0);
    }
    for (auto& p : readers) {
      const ToolResult r = p.wait();
      INFO("reader stdout:\n" << r.out << "\nstderr:\n" << r.err);
      CHECK(r.exit_code == 0);
      if (r.out.find("prebuild:") != std::string::npos) {
        CHECK(parse_summary(r.out).cached == 2);  // gc never removes a valid entry
      }
    }
    CHECK_FALSE(fs::exists(junk));
  }
  CHECK(tool.run({"cache", "verify"}).exit_code == 0);
  CHECK(entry_files(tool.cache.path).size() == 2);
}

TEST_CASE("marlinrt demo without a GPU compiles the preparation kernels", "[cli]") {
  if (!tool_built()) return;
  if (marlinrt::test::gpu_available()) return;  // with a GPU the demo runs the layer ([gpu] runs)
  ToolFixture tool;
  const ToolResult demo = tool.run({"demo", "--arch", "sm_90"});
  REQUIRE(demo.exit_code == 0);
  CHECK_THAT(demo.out, Catch::Contains("no usable GPU"));
  CHECK_THAT(demo.out, Catch::Contains(tool.cache.path.string()));
  const auto s = parse_summary(demo.out);
  CHECK(s.kernels >= 1);
  CHECK(s.failed == 0);
  CHECK(entry_files(tool.cache.path).size() == static_cast<std::size_t>(s.kernels));
}

TEST_CASE("marlinrt demo runs a layer on the GPU and checks it", "[cli][gpu]") {
  MARLINRT_REQUIRE_GPU();
  if (!tool_built()) return;
  ToolFixture tool;
  const ToolResult demo = tool.run({"demo", "-m", "16", "-n", "1024", "-k", "1024"});
  CHECK(demo.exit_code == 0);
  CHECK_THAT(demo.out, Catch::Contains("OK"));
}
