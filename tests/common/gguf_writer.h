#pragma once
// A GGUF v3 writer written for the tests from ggml's published specification
// (docs/gguf.md), independently of kvfid's reader: header, metadata pairs, tensor infos,
// padding to general.alignment (32), tensor data at aligned offsets, all little-endian.
#include <cstdint>
#include <string>
#include <vector>

namespace kvfid::test {

class GgufWriter {
 public:
  void u32(const std::string& key, std::uint32_t v);
  void f32(const std::string& key, float v);
  void str(const std::string& key, const std::string& v);
  void strings(const std::string& key, const std::vector<std::string>& v);
  // A tensor: ggml dims (dims[0] contiguous), ggml type id, its bytes.
  void tensor(const std::string& name, std::vector<std::uint64_t> dims, std::uint32_t type, std::string bytes);
  std::string bytes() const;

  static constexpr std::uint32_t kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ8_0 = 8, kBF16 = 30;

 private:
  struct Tensor {
    std::string name;
    std::vector<std::uint64_t> dims;
    std::uint32_t type;
    std::string bytes;
  };
  std::string kv_;  // encoded metadata pairs
  std::uint64_t n_kv_ = 0;
  std::vector<Tensor> tensors_;
};

}  // namespace kvfid::test
