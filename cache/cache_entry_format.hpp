// The bytes of one cache entry file: a self-checking header followed by the
// payload (a cubin). All integers little-endian.
//
//   offset  size  field
//        0     8  magic "MRTCACHE"
//        8     4  format version (kEntryFormatVersion)
//       12     4  label length L
//       16     4  key text length T
//       20     4  reserved, 0
//       24     8  payload length P
//       32     8  XXH64 (seed 0) of the payload
//       40    32  key id (32 lowercase hex chars)
//       72     L  label
//     72+L     T  key text
//   72+L+T     8  XXH64 (seed 0) of bytes [0, 72+L+T)
//   80+L+T     P  payload
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cache/cache_key.hpp"

namespace marlinrt::detail {

inline constexpr std::string_view kEntryMagic = "MRTCACHE";
inline constexpr std::uint32_t kEntryFormatVersion = 1;
inline constexpr std::size_t kEntryFixedHeaderBytes = 72;
// Sanity bounds so a damaged length field cannot ask for gigabytes.
inline constexpr std::uint32_t kEntryMaxLabelBytes = 4096;
inline constexpr std::uint32_t kEntryMaxTextBytes = 16u << 20;

struct EntryHeader {
  std::string id;
  std::string label;
  std::string text;
  std::uint64_t payload_bytes = 0;
  std::uint64_t payload_xxh64 = 0;
  std::size_t header_bytes = 0;  // where the payload starts
  std::uint64_t file_bytes() const { return header_bytes + payload_bytes; }
};

// The complete file for `key` and `payload` (labels longer than the bound are cut).
std::string encode_entry(const CacheKey& key, std::string_view payload);

// Length of the whole header given its fixed part, or 0 (with `problem` set)
// when the fixed part is already unusable. `fixed` must hold at least
// kEntryFixedHeaderBytes bytes.
std::size_t entry_header_bytes(std::string_view fixed, std::string& problem);

// Parses and checks the header at the start of `bytes` (magic, version,
// lengths, header checksum). Returns an empty string when sound, else what is wrong.
std::string parse_entry_header(std::string_view bytes, EntryHeader& header);

// Checks the whole file against its parsed header: exact size and payload
// checksum. Returns an empty string when sound, else what is wrong.
std::string check_entry_payload(std::string_view file, const EntryHeader& header);

}  // namespace marlinrt::detail
