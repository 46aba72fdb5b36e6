#pragma once
// SHA-256 (FIPS 180-4), to identify the exact weights a golden run was made from.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace kvfid::ref {

class Sha256 {
 public:
  Sha256();
  void update(std::string_view bytes);
  // The digest as 64 lowercase hex digits; the object must not be updated afterwards.
  std::string hex_digest();

 private:
  std::array<std::uint32_t, 8> state_;
  std::array<std::uint8_t, 64> buffer_{};
  std::size_t buffered_ = 0;
  std::uint64_t total_bytes_ = 0;
};

std::string sha256_hex(std::string_view bytes);
// Streams the file; throws InputError(path, ...) when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace kvfid::ref
