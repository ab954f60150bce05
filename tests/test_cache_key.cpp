// Cache key identity (CacheKeyBuilder) and cache settings (CacheConfig).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "cache/cache_config.hpp"
#include "cache/cache_key.hpp"
#include "marlinrt/error.hpp"

using namespace marlinrt;
using namespace marlinrt::detail;

namespace {

// Sets (or unsets, with nullopt) environment variables for one scope.
class EnvOverride {
 public:
  EnvOverride(std::initializer_list<std::pair<const char*, std::optional<std::string>>> vars) {
    for (const auto& [name, value] : vars) {
      const char* old = std::getenv(name);
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
      if (value) {
        ::setenv(name, value->c_str(), 1);
      } else {
        ::unsetenv(name);
      }
    }
  }
  ~EnvOverride() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

CacheKeyBuilder sample_builder() {
  CacheKeyBuilder b("gemm/e2m1/g16/bf16/dense/t128x128/m4/s4/w256/sm_90");
  b.add("template gemm.cuh", "template <int N> struct X {};")
      .add("unit", "#include \"gemm.cuh\"\n")
      .add("options", "--gpu-architecture=sm_90 -std=c++17")
      .add("nvrtc", "13.0")
      .add("arch", "sm_90")
      .add("abi", "1");
  return b;
}

std::string expect_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    CHECK(e.status() == Status::invalid_argument);
    return e.what();
  }
  FAIL("expected marlinrt::Error(invalid_argument)");
  return {};
}

}  // namespace

TEST_CASE("cache key id is stable across runs and builds", "[cache]") {
  const CacheKey key = sample_builder().build();
  // Computed once (and cross-checked with a one-shot XXH3-128 over the framed bytes);
  // a change here invalidates every user's cache, so it must be deliberate.
  CHECK(key.id == "00843bcfc678fa6e56ffbd15baa1f371");
  CHECK(is_cache_key_id(key.id));
  CHECK(key.label == "gemm/e2m1/g16/bf16/dense/t128x128/m4/s4/w256/sm_90");
  CHECK(sample_builder().build().id == key.id);
  CHECK(key.text ==
        "template gemm.cuh: template <int N> struct X {};\n"
        "unit: 20 bytes, xxh64 9e140c5b818065bd\n"
        "options: --gpu-architecture=sm_90 -std=c++17\n"
        "nvrtc: 13.0\n"
        "arch: sm_90\n"
        "abi: 1\n");
}

TEST_CASE("cache key id changes with every single part, its name and the order", "[cache]") {
  struct Part {
    std::string name, bytes;
  };
  const std::vector<Part> parts = {{"template gemm.cuh", std::string(5000, 'x') + "tail"},
                                   {"unit", "render"},
                                   {"options", "-std=c++17"},
                                   {"nvrtc", "13.0"},
                                   {"arch", "sm_90"},
                                   {"abi", "1"}};
  auto id_of = [](const std::vector<Part>& list) {
    CacheKeyBuilder b("label");
    for (const auto& p : list) b.add(p.name, p.bytes);
    return b.build().id;
  };
  const std::string base = id_of(parts);
  std::set<std::string> seen = {base};
  for (std::size_t i = 0; i < parts.size(); ++i) {
    auto changed_bytes = parts;
    changed_bytes[i].bytes.back() ^= 1;  // one bit, at the end of even the long part
    CHECK(seen.insert(id_of(changed_bytes)).second);
    auto changed_name = parts;
    changed_name[i].name += "x";
    CHECK(seen.insert(id_of(changed_name)).second);
    auto dropped = parts;
    dropped.erase(dropped.begin() + static_cast<std::ptrdiff_t>(i));
    CHECK(seen.insert(id_of(dropped)).second);
  }
  auto swapped = parts;
  std::swap(swapped[1], swapped[2]);
  CHECK(seen.insert(id_of(swapped)).second);

  // Framing: moving bytes across a boundary must not collide.
  CHECK(id_of({{"a", "bc"}}) != id_of({{"ab", "c"}}));
  CHECK(id_of({{"n", "xy"}, {"m", "z"}}) != id_of({{"n", "x"}, {"m", "yz"}}));
  CHECK(id_of({{"n", ""}}) != id_of({}));
  // The label names an entry; it is not an input of the kernel.
  CHECK(CacheKeyBuilder("one").add("p", "v").build().id ==
        CacheKeyBuilder("two").add("p", "v").build().id);
}

TEST_CASE("cache key text shows short parts verbatim and hashes the rest", "[cache]") {
  const std::string binary(
      "\x7f"
      "ELF\0\x01",
      6);
  const std::string long_text(161, 'a');
  const CacheKey key = CacheKeyBuilder("k")
                           .add("short", "sm_90")
                           .add("empty", "")
                           .add("binary", binary)
                           .add("long", long_text)
                           .add("newline", "a\nb")
                           .build();
  CHECK(key.text.find("short: sm_90\n") == 0);
  CHECK(key.text.find("empty: \n") != std::string::npos);
  CHECK(key.text.find("binary: 6 bytes, xxh64 ") != std::string::npos);
  CHECK(key.text.find("long: 161 bytes, xxh64 ") != std::string::npos);
  CHECK(key.text.find("newline: 3 bytes, xxh64 ") != std::string::npos);
  CHECK(std::count(key.text.begin(), key.text.end(), '\n') == 5);

  // A copy continues independently of the original.
  CacheKeyBuilder base("k");
  base.add("a", "1");
  CacheKeyBuilder copy = base;
  copy.add("b", "2");
  CHECK(base.build().id == CacheKeyBuilder("k").add("a", "1").build().id);
  CHECK(copy.build().id == CacheKeyBuilder("k").add("a", "1").add("b", "2").build().id);
}

TEST_CASE("cache key builder rejects names and labels that would break the key text", "[cache]") {
  CacheKeyBuilder b("k");
  CHECK_THAT(expect_error([&] { b.add("", "x"); }), Catch::Contains("printable"));
  CHECK_THAT(expect_error([&] { b.add("a\nb", "x"); }), Catch::Contains("printable"));
  CHECK_THAT(expect_error([] { CacheKeyBuilder("two\nlines"); }),
             Catch::Contains("control character"));
  CHECK(is_cache_key_id("0123456789abcdef0123456789abcdef"));
  CHECK_FALSE(is_cache_key_id("0123456789ABCDEF0123456789abcdef"));
  CHECK_FALSE(is_cache_key_id("0123456789abcdef"));
  CHECK_FALSE(is_cache_key_id("../../../../etc/passwd/aaaaaaaaa"));
}

TEST_CASE("cache byte sizes accept 123, 64K, 512M, 2G and reject junk", "[cache]") {
  CHECK(parse_byte_size("0", "V") == 0);
  CHECK(parse_byte_size("123", "V") == 123);
  CHECK(parse_byte_size("64K", "V") == 64u << 10);
  CHECK(parse_byte_size("64k", "V") == 64u << 10);
  CHECK(parse_byte_size("64KiB", "V") == 64u << 10);
  CHECK(parse_byte_size("512M", "V") == 512ull << 20);
  CHECK(parse_byte_size("512MB", "V") == 512ull << 20);
  CHECK(parse_byte_size("2G", "V") == 2ull << 30);
  CHECK(parse_byte_size("3T", "V") == 3ull << 40);
  CHECK(parse_byte_size("100B", "V") == 100);
  for (const char* junk : {"", "K", "-1", "1.5G", "12X", "12 K", "12KK", "0x10", "1Bi", "12Bb"}) {
    INFO(junk);
    CHECK_THAT(expect_error([&] { parse_byte_size(junk, "MARLINRT_CACHE_MAX_BYTES"); }),
               Catch::Contains("MARLINRT_CACHE_MAX_BYTES") && Catch::Contains("64K"));
  }
  CHECK_THAT(expect_error([] { parse_byte_size("99999999999999999999", "V"); }),
             Catch::Contains("too large"));
  CHECK_THAT(expect_error([] { parse_byte_size("20000000T", "V"); }), Catch::Contains("too large"));
}

TEST_CASE("cache config comes from the environment", "[cache]") {
  const EnvOverride clean({{"MARLINRT_CACHE_DIR", std::nullopt},
                           {"XDG_CACHE_HOME", std::nullopt},
                           {"HOME", "/home/someone"},
                           {"MARLINRT_CACHE_DISABLE", std::nullopt},
                           {"MARLINRT_CACHE_MAX_BYTES", std::nullopt},
                           {"MARLINRT_CACHE_ALLOW_SHARED", std::nullopt}});
  {
    const CacheConfig c = CacheConfig::from_env();
    CHECK(c.dir == "/home/someone/.cache/marlinrt");
    CHECK_FALSE(c.disabled);
    CHECK(c.max_bytes == 0);
    CHECK_FALSE(c.allow_shared_dir);
  }
  {
    const EnvOverride xdg({{"XDG_CACHE_HOME", "/xdg/cache"}});
    CHECK(CacheConfig::from_env().dir == "/xdg/cache/marlinrt");
  }
  {
    // The XDG spec says a relative value is invalid: ignored.
    const EnvOverride xdg({{"XDG_CACHE_HOME", "relative/cache"}});
    CHECK(CacheConfig::from_env().dir == "/home/someone/.cache/marlinrt");
  }
  {
    const EnvOverride dir({{"MARLINRT_CACHE_DIR", "/srv/kernels"}, {"XDG_CACHE_HOME", "/xdg"}});
    CHECK(CacheConfig::from_env().dir == "/srv/kernels");
  }
  {
    const EnvOverride dir({{"MARLINRT_CACHE_DIR", "relative/kernels"}});
    const auto d = CacheConfig::from_env().dir;
    CHECK(d.is_absolute());
    CHECK(d == (std::filesystem::current_path() / "relative/kernels"));
  }
  {
    const EnvOverride dir({{"MARLINRT_CACHE_DIR", ""}});  // empty = unset
    CHECK(CacheConfig::from_env().dir == "/home/someone/.cache/marlinrt");
  }
  for (const char* on : {"1", "true", "on", "TRUE", "yes"}) {
    const EnvOverride v({{"MARLINRT_CACHE_DISABLE", on}, {"MARLINRT_CACHE_ALLOW_SHARED", on}});
    CHECK(CacheConfig::from_env().disabled);
    CHECK(CacheConfig::from_env().allow_shared_dir);
  }
  for (const char* off : {"0", "false", "off", "", "No"}) {
    const EnvOverride v({{"MARLINRT_CACHE_DISABLE", off}, {"MARLINRT_CACHE_ALLOW_SHARED", off}});
    CHECK_FALSE(CacheConfig::from_env().disabled);
    CHECK_FALSE(CacheConfig::from_env().allow_shared_dir);
  }
  {
    const EnvOverride v({{"MARLINRT_CACHE_MAX_BYTES", "512M"}});
    CHECK(CacheConfig::from_env().max_bytes == 512ull << 20);
  }
  {
    const EnvOverride v({{"MARLINRT_CACHE_MAX_BYTES", "lots"}});
    CHECK_THAT(expect_error([] { CacheConfig::from_env(); }),
               Catch::Contains("MARLINRT_CACHE_MAX_BYTES='lots'"));
  }
  {
    const EnvOverride v({{"MARLINRT_CACHE_DISABLE", "maybe"}});
    CHECK_THAT(expect_error([] { CacheConfig::from_env(); }),
               Catch::Contains("MARLINRT_CACHE_DISABLE='maybe'"));
  }
  {
    const EnvOverride v({{"MARLINRT_CACHE_ALLOW_SHARED", "2"}});
    CHECK_THAT(expect_error([] { CacheConfig::from_env(); }),
               Catch::Contains("MARLINRT_CACHE_ALLOW_SHARED='2'"));
  }
}
