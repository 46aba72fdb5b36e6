#pragma once
// One block of codec C (a codec type of reference/formats/quant: kBytes, encode) encoded
// with default parameters: the bytes the layout tests compare with hand-derived ones.
#include <cstdint>
#include <vector>

namespace kvfid::test {

template <class C>
std::vector<std::uint8_t> encode_block_bytes(const std::vector<float>& x) {
  std::vector<std::uint8_t> bytes(C::kBytes);
  C::encode(x.data(), bytes.data(), {});
  return bytes;
}

}  // namespace kvfid::test
