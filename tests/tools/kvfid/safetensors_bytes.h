#pragma once
// Where a tensor's bytes lie inside a safetensors file, read straight from the format
// (8-byte little-endian header length N, N bytes of JSON with data_offsets relative to
// the end of the header), independently of the project's reader, so tests can damage
// exactly one tensor on disk.
#include <cstddef>
#include <string>

namespace kvfid::test {

struct TensorBytes {
  std::string dtype;       // as written in the header, e.g. "F32"
  std::size_t offset = 0;  // absolute offset of the first data byte in the file
  std::size_t size = 0;    // data bytes
};

// Fails the calling test (gtest ADD_FAILURE) and returns size 0 when `name` is absent.
TensorBytes locate_tensor(const std::string& file_bytes, const std::string& name);

}  // namespace kvfid::test
