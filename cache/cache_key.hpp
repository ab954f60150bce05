// The identity of a disk cache entry: a hash over every input that went into
// a kernel (template bytes, rendered unit, options, compiler version, ...).
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace marlinrt::detail {

struct CacheKey {
  std::string id;     // 32 lowercase hex chars: XXH3-128 over all parts (length-prefixed, named)
  std::string label;  // short human name (the kernel key text), used by listings
  std::string text;   // one line per part, "name: value"; stored in the entry and compared on load
};

// Parts are hashed in the order they are added; each is framed by its name
// and both lengths, so no two different part lists can hash the same input.
class CacheKeyBuilder {
 public:
  // The label must be one line (no control characters); throws otherwise.
  explicit CacheKeyBuilder(std::string label);
  CacheKeyBuilder(const CacheKeyBuilder& other);
  CacheKeyBuilder& operator=(const CacheKeyBuilder& other);
  CacheKeyBuilder(CacheKeyBuilder&&) noexcept;
  CacheKeyBuilder& operator=(CacheKeyBuilder&&) noexcept;
  ~CacheKeyBuilder();

  // `name` must be non-empty printable ASCII (it becomes a line of the key
  // text); `bytes` may be anything. Throws Error(invalid_argument) otherwise.
  CacheKeyBuilder& add(std::string_view name, std::string_view bytes);
  CacheKey build() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// True for exactly 32 lowercase hex characters (what build() produces).
bool is_cache_key_id(std::string_view id) noexcept;

}  // namespace marlinrt::detail
