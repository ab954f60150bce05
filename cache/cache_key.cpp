#include "cache/cache_key.hpp"

#include <xxhash.h>

#include <cstdint>
#include <new>

#include "runtime/fail.hpp"

namespace marlinrt::detail {
namespace {

// Changing how parts are framed must change every id: this prefix says which
// framing produced a hash.
constexpr std::string_view kDomain = "marlinrt cache key v1\n";
// Parts this short and printable appear verbatim in the key text.
constexpr std::size_t kMaxVerbatimBytes = 160;

bool printable(std::string_view text) noexcept {
  for (char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

void check_one_line(std::string_view what, std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      fail(Status::invalid_argument,
           "cache key {} '{}' contains a control character: expected one line of text", what, text);
    }
  }
}

std::string little_endian(std::uint64_t value) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  return out;
}

}  // namespace

struct CacheKeyBuilder::State {
  std::string label;
  std::string text;
  XXH3_state_t* hash = nullptr;

  explicit State(std::string l) : label(std::move(l)), hash(XXH3_createState()) {
    if (hash == nullptr) throw std::bad_alloc();
    XXH3_128bits_reset(hash);
    XXH3_128bits_update(hash, kDomain.data(), kDomain.size());
  }
  State(const State& other) : label(other.label), text(other.text), hash(XXH3_createState()) {
    if (hash == nullptr) throw std::bad_alloc();
    XXH3_copyState(hash, other.hash);
  }
  State& operator=(const State&) = delete;
  ~State() { XXH3_freeState(hash); }
};

CacheKeyBuilder::CacheKeyBuilder(std::string label) {
  check_one_line("label", label);
  state_ = std::make_unique<State>(std::move(label));
}

CacheKeyBuilder::CacheKeyBuilder(const CacheKeyBuilder& other)
    : state_(std::make_unique<State>(*other.state_)) {}

CacheKeyBuilder& CacheKeyBuilder::operator=(const CacheKeyBuilder& other) {
  if (this != &other) state_ = std::make_unique<State>(*other.state_);
  return *this;
}

CacheKeyBuilder::CacheKeyBuilder(CacheKeyBuilder&&) noexcept = default;
CacheKeyBuilder& CacheKeyBuilder::operator=(CacheKeyBuilder&&) noexcept = default;
CacheKeyBuilder::~CacheKeyBuilder() = default;

CacheKeyBuilder& CacheKeyBuilder::add(std::string_view name, std::string_view bytes) {
  if (!state_) {
    fail(Status::internal, "CacheKeyBuilder::add on a moved-from builder (part '{}')", name);
  }
  if (name.empty() || !printable(name)) {
    fail(Status::invalid_argument,
         "cache key part name '{}' is not valid: expected non-empty printable ASCII", name);
  }
  for (std::string_view piece : {name, bytes}) {
    const std::string length = little_endian(piece.size());
    XXH3_128bits_update(state_->hash, length.data(), length.size());
    XXH3_128bits_update(state_->hash, piece.data(), piece.size());
  }
  auto& text = state_->text;
  text.append(name).append(": ");
  if (bytes.size() <= kMaxVerbatimBytes && printable(bytes)) {
    text.append(bytes);
  } else {
    text.append(
        fmt::format("{} bytes, xxh64 {:016x}", bytes.size(), XXH64(bytes.data(), bytes.size(), 0)));
  }
  text.push_back('\n');
  return *this;
}

CacheKey CacheKeyBuilder::build() const {
  if (!state_) fail(Status::internal, "CacheKeyBuilder::build on a moved-from builder");
  const XXH128_hash_t digest = XXH3_128bits_digest(state_->hash);
  return CacheKey{fmt::format("{:016x}{:016x}", digest.high64, digest.low64), state_->label,
                  state_->text};
}

bool is_cache_key_id(std::string_view id) noexcept {
  if (id.size() != 32) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace marlinrt::detail
