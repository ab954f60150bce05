#include "cache/cache_entry_format.hpp"

#include <xxhash.h>

#include <algorithm>

#include <fmt/format.h>

namespace marlinrt::detail {
namespace {

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::uint64_t get_le(std::string_view bytes, std::size_t offset, int width) {
  std::uint64_t v = 0;
  for (int i = width - 1; i >= 0; --i) {
    v = (v << 8) | static_cast<unsigned char>(bytes[offset + static_cast<std::size_t>(i)]);
  }
  return v;
}

}  // namespace

std::string encode_entry(const CacheKey& key, std::string_view payload) {
  const std::string_view label = std::string_view(key.label).substr(
      0, std::min<std::size_t>(key.label.size(), kEntryMaxLabelBytes));
  std::string out;
  out.reserve(kEntryFixedHeaderBytes + label.size() + key.text.size() + 8 + payload.size());
  out.append(kEntryMagic);
  put_u32(out, kEntryFormatVersion);
  put_u32(out, static_cast<std::uint32_t>(label.size()));
  put_u32(out, static_cast<std::uint32_t>(key.text.size()));
  put_u32(out, 0);
  put_u64(out, payload.size());
  put_u64(out, XXH64(payload.data(), payload.size(), 0));
  std::string id = key.id;
  id.resize(32, '\0');
  out.append(id);
  out.append(label);
  out.append(key.text);
  put_u64(out, XXH64(out.data(), out.size(), 0));
  out.append(payload);
  return out;
}

std::size_t entry_header_bytes(std::string_view fixed, std::string& problem) {
  if (fixed.size() < kEntryFixedHeaderBytes) {
    problem = fmt::format("short file: {} bytes, less than the {}-byte header", fixed.size(),
                          kEntryFixedHeaderBytes);
    return 0;
  }
  if (fixed.substr(0, kEntryMagic.size()) != kEntryMagic) {
    problem = "wrong magic: not a marlinrt cache entry";
    return 0;
  }
  const auto version = static_cast<std::uint32_t>(get_le(fixed, 8, 4));
  if (version != kEntryFormatVersion) {
    problem = fmt::format("format version {}, expected {}", version, kEntryFormatVersion);
    return 0;
  }
  const auto label_bytes = static_cast<std::uint32_t>(get_le(fixed, 12, 4));
  const auto text_bytes = static_cast<std::uint32_t>(get_le(fixed, 16, 4));
  if (label_bytes > kEntryMaxLabelBytes || text_bytes > kEntryMaxTextBytes ||
      get_le(fixed, 20, 4) != 0) {
    problem = "damaged header: implausible lengths";
    return 0;
  }
  return kEntryFixedHeaderBytes + label_bytes + text_bytes + 8;
}

std::string parse_entry_header(std::string_view bytes, EntryHeader& header) {
  std::string problem;
  const std::size_t header_bytes = entry_header_bytes(bytes, problem);
  if (header_bytes == 0) return problem;
  if (bytes.size() < header_bytes) {
    return fmt::format("truncated header: {} bytes, the header needs {}", bytes.size(),
                       header_bytes);
  }
  const std::size_t checked = header_bytes - 8;
  if (XXH64(bytes.data(), checked, 0) != get_le(bytes, checked, 8)) {
    return "header checksum mismatch (damaged header)";
  }
  const auto label_bytes = static_cast<std::size_t>(get_le(bytes, 12, 4));
  const auto text_bytes = static_cast<std::size_t>(get_le(bytes, 16, 4));
  header.payload_bytes = get_le(bytes, 24, 8);
  header.payload_xxh64 = get_le(bytes, 32, 8);
  header.id.assign(bytes.substr(40, 32));
  header.label.assign(bytes.substr(kEntryFixedHeaderBytes, label_bytes));
  header.text.assign(bytes.substr(kEntryFixedHeaderBytes + label_bytes, text_bytes));
  header.header_bytes = header_bytes;
  if (!is_cache_key_id(header.id)) return "damaged header: the stored key id is not 32 hex chars";
  return {};
}

std::string check_entry_payload(std::string_view file, const EntryHeader& header) {
  if (header.payload_bytes > file.size() ||
      file.size() - header.payload_bytes != header.header_bytes) {
    return fmt::format("wrong size: {} bytes, the header announces {}", file.size(),
                       header.file_bytes());
  }
  const std::string_view payload = file.substr(header.header_bytes);
  if (XXH64(payload.data(), payload.size(), 0) != header.payload_xxh64) {
    return "payload checksum mismatch (damaged payload)";
  }
  return {};
}

}  // namespace marlinrt::detail
