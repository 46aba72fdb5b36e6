#include "tests/common/gguf_writer.h"

#include <cstring>

namespace kvfid::test {

namespace {

template <typename T>
void put(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // little-endian host, as GGUF
  out.append(b, sizeof(T));
}
void put_string(std::string& out, const std::string& s) {
  put<std::uint64_t>(out, s.size());
  out += s;
}

constexpr std::uint32_t kTypeU32 = 4, kTypeF32 = 6, kTypeString = 8, kTypeArray = 9;
constexpr std::uint64_t kAlignment = 32;

}  // namespace

void GgufWriter::u32(const std::string& key, std::uint32_t v) {
  put_string(kv_, key), put(kv_, kTypeU32), put(kv_, v), ++n_kv_;
}
void GgufWriter::f32(const std::string& key, float v) {
  put_string(kv_, key), put(kv_, kTypeF32), put(kv_, v), ++n_kv_;
}
void GgufWriter::str(const std::string& key, const std::string& v) {
  put_string(kv_, key), put(kv_, kTypeString), put_string(kv_, v), ++n_kv_;
}
void GgufWriter::strings(const std::string& key, const std::vector<std::string>& v) {
  put_string(kv_, key), put(kv_, kTypeArray), put(kv_, kTypeString), put<std::uint64_t>(kv_, v.size());
  for (const std::string& s : v) put_string(kv_, s);
  ++n_kv_;
}
void GgufWriter::tensor(const std::string& name, std::vector<std::uint64_t> dims, std::uint32_t type, std::string bytes) {
  tensors_.push_back({name, std::move(dims), type, std::move(bytes)});
}

std::string GgufWriter::bytes() const {
  std::string out = "GGUF";
  put<std::uint32_t>(out, 3);
  put<std::uint64_t>(out, tensors_.size());
  put<std::uint64_t>(out, n_kv_);
  out += kv_;
  std::uint64_t offset = 0;
  std::vector<std::uint64_t> offsets;
  for (const Tensor& t : tensors_) {
    put_string(out, t.name);
    put<std::uint32_t>(out, std::uint32_t(t.dims.size()));
    for (std::uint64_t d : t.dims) put(out, d);
    put(out, t.type);
    put(out, offset);
    offsets.push_back(offset);
    offset = (offset + t.bytes.size() + kAlignment - 1) / kAlignment * kAlignment;
  }
  out.resize((out.size() + kAlignment - 1) / kAlignment * kAlignment, '\0');
  const std::size_t data = out.size();
  for (std::size_t i = 0; i < tensors_.size(); ++i) {
    out.resize(data + offsets[i], '\0');
    out += tensors_[i].bytes;
  }
  return out;
}

}  // namespace kvfid::test
