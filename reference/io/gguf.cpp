#include "reference/io/gguf.h"

#include <cstring>
#include <fstream>

#include "reference/io/mapped_file.h"
#include "reference/util/input_error.h"

namespace kvfid::ref {

namespace {

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr std::uint32_t kVersion = 3;
constexpr std::uint64_t kDefaultAlignment = 32;

enum ValueType : std::uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};

// A cursor over the mapped bytes: every read is checked against the end first.
class Reader {
 public:
  Reader(const std::string& path, const std::uint8_t* data, std::uint64_t size) : path_(path), data_(data), size_(size) {}

  std::uint64_t at() const { return at_; }
  std::uint64_t left() const { return size_ - at_; }
  [[noreturn]] void fail(const std::string& problem) const {
    throw InputError(path_, problem + " (at byte " + std::to_string(at_) + ")");
  }

  template <typename T>
  T scalar(const char* what) {
    if (left() < sizeof(T)) fail(std::string("truncated: ") + what + " runs past the end");
    T v;
    std::memcpy(&v, data_ + at_, sizeof(T));  // little-endian: GGUF's byte order and this machine's
    at_ += sizeof(T);
    return v;
  }
  std::string string(const char* what) {
    const std::uint64_t n = scalar<std::uint64_t>(what);
    if (n > left()) fail(std::string("truncated: ") + what + " of " + std::to_string(n) + " bytes runs past the end");
    std::string s(reinterpret_cast<const char*>(data_ + at_), std::size_t(n));
    at_ += n;
    return s;
  }

 private:
  const std::string& path_;
  const std::uint8_t* data_;
  std::uint64_t size_;
  std::uint64_t at_ = 0;
};

// The smallest number of bytes one value of `type` can take (an array: its type and
// count), so that a count can be checked against the bytes left before looping.
std::uint64_t min_value_bytes(std::uint32_t type) {
  switch (type) {
    case kU8: case kI8: case kBool: return 1;
    case kU16: case kI16: return 2;
    case kU32: case kI32: case kF32: return 4;
    case kU64: case kI64: case kF64: case kString: return 8;
    case kArray: return 12;
  }
  return 0;
}

GgufValue read_value(Reader& r, std::uint32_t type, std::uint32_t depth) {
  GgufValue out;
  out.type = type;
  switch (type) {
    case kU8: out.v = std::uint64_t(r.scalar<std::uint8_t>("a u8 value")); break;
    case kI8: out.v = std::int64_t(r.scalar<std::int8_t>("an i8 value")); break;
    case kU16: out.v = std::uint64_t(r.scalar<std::uint16_t>("a u16 value")); break;
    case kI16: out.v = std::int64_t(r.scalar<std::int16_t>("an i16 value")); break;
    case kU32: out.v = std::uint64_t(r.scalar<std::uint32_t>("a u32 value")); break;
    case kI32: out.v = std::int64_t(r.scalar<std::int32_t>("an i32 value")); break;
    case kF32: out.v = double(r.scalar<float>("an f32 value")); break;
    case kU64: out.v = r.scalar<std::uint64_t>("a u64 value"); break;
    case kI64: out.v = r.scalar<std::int64_t>("an i64 value"); break;
    case kF64: out.v = r.scalar<double>("an f64 value"); break;
    case kBool: {
      const std::uint8_t b = r.scalar<std::uint8_t>("a bool value");
      if (b > 1) r.fail("a bool value is " + std::to_string(b) + ", not 0 or 1");
      out.v = b == 1;
      break;
    }
    case kString: out.v = r.string("a string value"); break;
    case kArray: {
      if (depth >= kGgufMaxArrayDepth) r.fail("arrays nest deeper than " + std::to_string(kGgufMaxArrayDepth) + " levels");
      const std::uint32_t item = r.scalar<std::uint32_t>("an array's item type");
      const std::uint64_t n = r.scalar<std::uint64_t>("an array's length");
      if (min_value_bytes(item) == 0) r.fail("an array's item type " + std::to_string(item) + " is not a GGUF value type");
      if (n > r.left() / min_value_bytes(item))
        r.fail("truncated: an array of " + std::to_string(n) + " items cannot fit in the " + std::to_string(r.left()) +
               " bytes left");
      GgufArray items;
      items.reserve(std::size_t(n));
      for (std::uint64_t i = 0; i < n; ++i) items.push_back(read_value(r, item, depth + 1));
      out.v = std::move(items);
      break;
    }
    default: r.fail("value type " + std::to_string(type) + " is not a GGUF value type");
  }
  return out;
}

// Bytes of a tensor of `type` with `elements` elements and `row` contiguous ones, or
// nullopt when ggml's type is not one kvfid reads or the row is not whole blocks.
std::optional<std::uint64_t> tensor_bytes(std::uint32_t type, std::uint64_t elements, std::uint64_t row) {
  switch (GgmlType(type)) {
    case GgmlType::f32: return elements * 4;
    case GgmlType::f16:
    case GgmlType::bf16: return elements * 2;
    case GgmlType::q8_0: return row % 32 ? std::nullopt : std::optional<std::uint64_t>(elements / 32 * 34);
    case GgmlType::q4_0: return row % 32 ? std::nullopt : std::optional<std::uint64_t>(elements / 32 * 18);
  }
  return std::nullopt;
}

}  // namespace

const GgufValue* GgufFile::find(const std::string& key) const {
  const auto it = metadata.find(key);
  return it == metadata.end() ? nullptr : &it->second;
}

bool is_gguf_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::memcmp(magic, kMagic, 4) == 0;
}

GgufFile read_gguf(const std::string& path) {
  GgufFile f;
  f.path = path;
  f.mapping = MappedFile::open(path);
  Reader r(path, f.mapping->data(), f.mapping->size());
  char magic[4];
  for (char& c : magic) c = char(r.scalar<std::uint8_t>("the magic"));
  if (std::memcmp(magic, kMagic, 4) != 0) r.fail("not a GGUF file (no 'GGUF' magic)");
  const std::uint32_t version = r.scalar<std::uint32_t>("the version");
  if (version != kVersion) r.fail("GGUF version " + std::to_string(version) + " is not supported (only 3)");
  const std::uint64_t n_tensors = r.scalar<std::uint64_t>("the tensor count");
  const std::uint64_t n_kv = r.scalar<std::uint64_t>("the metadata count");
  // Each pair takes at least a key length and a type; each tensor info a name length,
  // n_dims, a type and an offset.
  if (n_kv > r.left() / 12) r.fail("truncated: " + std::to_string(n_kv) + " metadata pairs cannot fit in the file");
  for (std::uint64_t i = 0; i < n_kv; ++i) {
    std::string key = r.string("a metadata key");
    const std::uint32_t type = r.scalar<std::uint32_t>("a metadata value type");
    GgufValue value = read_value(r, type, 0);
    if (!f.metadata.emplace(key, std::move(value)).second) r.fail("metadata key '" + key + "' appears twice");
  }
  std::uint64_t alignment = kDefaultAlignment;
  if (const GgufValue* a = f.find("general.alignment")) {
    const std::uint64_t* v = std::get_if<std::uint64_t>(&a->v);
    if (!v || *v == 0 || (*v & (*v - 1)) != 0 || *v > 4096) r.fail("general.alignment must be a power of two up to 4096");
    alignment = *v;
  }
  if (n_tensors > r.left() / 24) r.fail("truncated: " + std::to_string(n_tensors) + " tensor infos cannot fit in the file");
  struct Info {
    std::string name;
    std::vector<std::uint64_t> dims;
    std::uint32_t type;
    std::uint64_t offset, bytes;
  };
  std::vector<Info> infos;
  for (std::uint64_t i = 0; i < n_tensors; ++i) {
    Info t;
    t.name = r.string("a tensor name");
    const std::uint32_t n_dims = r.scalar<std::uint32_t>("a tensor's dimension count");
    if (n_dims == 0 || n_dims > kGgufMaxDims)
      r.fail("tensor '" + t.name + "' has " + std::to_string(n_dims) + " dimensions (1 to 4)");
    std::uint64_t elements = 1;
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      const std::uint64_t n = r.scalar<std::uint64_t>("a tensor dimension");
      if (n == 0 || n > (std::uint64_t(1) << 40) || elements > (std::uint64_t(1) << 40) / n)
        r.fail("tensor '" + t.name + "' has a dimension of " + std::to_string(n) + ": empty or too large");
      elements *= n;
      t.dims.push_back(n);
    }
    t.type = r.scalar<std::uint32_t>("a tensor type");
    t.offset = r.scalar<std::uint64_t>("a tensor offset");
    const std::optional<std::uint64_t> bytes = tensor_bytes(t.type, elements, t.dims[0]);
    if (!bytes)
      r.fail("tensor '" + t.name + "' has ggml type " + std::to_string(t.type) +
             ", which kvfid does not read (F32, F16, BF16, Q8_0, Q4_0; quantized rows in whole blocks of 32)");
    t.bytes = *bytes;
    if (t.offset % alignment != 0) r.fail("tensor '" + t.name + "' starts off the alignment of " + std::to_string(alignment));
    infos.push_back(std::move(t));
  }
  const std::uint64_t data_start = (r.at() + alignment - 1) / alignment * alignment;
  const std::uint64_t size = f.mapping->size();
  for (const Info& t : infos) {
    if (data_start > size || t.offset > size - data_start || t.bytes > size - data_start - t.offset)
      throw InputError(path, "truncated: tensor '" + t.name + "' (" + std::to_string(t.bytes) + " bytes at data offset " +
                                 std::to_string(t.offset) + ") runs past the end of the file");
    GgufTensor tensor{t.dims, GgmlType(t.type), f.mapping->data() + data_start + t.offset, t.bytes};
    if (!f.tensors.emplace(t.name, std::move(tensor)).second) throw InputError(path, "tensor '" + t.name + "' appears twice");
  }
  return f;
}

}  // namespace kvfid::ref
