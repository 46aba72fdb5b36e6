#include "reference/io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <tuple>

#include <nlohmann/json.hpp>

#include "reference/formats/minifloat.h"
#include "reference/io/atomic_file.h"
#include "reference/util/input_error.h"
#include "reference/io/json_input.h"
#include "reference/util/brief_text.h"
#include "reference/util/checked_arith.h"
#include "reference/io/mapped_file.h"

static_assert(std::endian::native == std::endian::little, "kvfid reads and writes little-endian tensors in place");

namespace kvfid::ref {

namespace {

// safetensors caps its header at 100 MB; a larger length means a corrupt file.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

struct DTypeInfo {
  DType type;
  const char* name;
  std::size_t size;
};
constexpr DTypeInfo kDTypes[] = {{DType::F64, "F64", 8}, {DType::F32, "F32", 4}, {DType::F16, "F16", 2},
                                 {DType::BF16, "BF16", 2}, {DType::I64, "I64", 8}, {DType::I32, "I32", 4},
                                 {DType::U8, "U8", 1}};

const DTypeInfo& info(DType t) {
  for (const auto& d : kDTypes)
    if (d.type == t) return d;
  throw std::logic_error("unknown dtype");
}

template <class T>
Tensor make(std::vector<std::int64_t> shape, const std::vector<T>& values, DType dtype) {
  Tensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  if (t.numel() != std::int64_t(values.size())) throw std::logic_error("tensor shape does not match its values");
  t.bytes.resize(values.size() * sizeof(T));
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

template <class T>
T load(const std::uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

std::size_t dtype_size(DType t) { return info(t).size; }
std::string dtype_name(DType t) { return info(t).name; }

std::int64_t Tensor::numel() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

Tensor tensor_f64(std::vector<std::int64_t> shape, const std::vector<double>& values) {
  return make(std::move(shape), values, DType::F64);
}
Tensor tensor_f32(std::vector<std::int64_t> shape, const std::vector<float>& values) {
  return make(std::move(shape), values, DType::F32);
}

std::vector<double> tensor_values(const Tensor& t, const std::string& where) {
  return tensor_values(TensorView{t.dtype, t.shape, t.bytes.data(), t.bytes.size()}, where);
}

std::vector<double> tensor_values(const TensorView& t, const std::string& where) {
  const std::size_t n = std::size_t(t.size / dtype_size(t.dtype));
  std::vector<double> out(n);
  const std::uint8_t* p = t.data;
  switch (t.dtype) {
    case DType::F64:
      for (std::size_t i = 0; i < n; ++i) out[i] = load<double>(p + 8 * i);
      break;
    case DType::F32:
      for (std::size_t i = 0; i < n; ++i) out[i] = load<float>(p + 4 * i);
      break;
    case DType::F16:
      for (std::size_t i = 0; i < n; ++i) out[i] = f16_to_double(load<std::uint16_t>(p + 2 * i));
      break;
    case DType::BF16:
      for (std::size_t i = 0; i < n; ++i) out[i] = bf16_to_double(load<std::uint16_t>(p + 2 * i));
      break;
    default:
      throw InputError(where, "dtype " + dtype_name(t.dtype) + " is not a floating-point type (F64, F32, F16, BF16)");
  }
  return out;
}

const Tensor& SafetensorsFile::get(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw InputError(path, "missing tensor '" + name + "'");
  return it->second;
}

namespace {

struct ParsedTensor {
  std::string name;
  DType dtype;
  std::vector<std::int64_t> shape;
  const std::uint8_t* data;  // into the file's bytes
  std::uint64_t size;
};

// Validates the header and the layout of the `size` bytes of a whole file at `raw`.
std::vector<ParsedTensor> parse_safetensors(const std::string& path, const std::uint8_t* raw, std::uint64_t size,
                                            std::map<std::string, std::string>& metadata) {
  if (size < 8) throw InputError(path, "not a safetensors file: shorter than its 8-byte header length");
  std::uint64_t header_len = load<std::uint64_t>(raw);
  if (header_len > kMaxHeaderBytes || header_len > size - 8)
    throw InputError(path, "not a safetensors file: header length " + std::to_string(header_len) +
                               " exceeds the file size " + std::to_string(size));
  const nlohmann::json header = parse_json_input(
      std::string_view(reinterpret_cast<const char*>(raw) + 8, std::size_t(header_len)), path,
      "not a safetensors file: header");
  if (!header.is_object()) throw InputError(path, "not a safetensors file: header is not a JSON object");

  std::vector<ParsedTensor> out;
  const std::uint8_t* data = raw + 8 + header_len;
  const std::uint64_t data_len = size - 8 - header_len;
  struct Range {
    std::uint64_t begin, end;
    std::string name;
    bool operator<(const Range& o) const { return std::tie(begin, end) < std::tie(o.begin, o.end); }
  };
  std::vector<Range> ranges;
  for (auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) throw InputError(path, "__metadata__ is not an object");
      for (auto& [k, v] : entry.items()) {
        if (!v.is_string()) throw InputError(path, "__metadata__ value for '" + brief_text(k) + "' is not a string");
        metadata[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + brief_text(name) + "'";
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets"))
      throw InputError(path, where + " lacks dtype, shape or data_offsets");
    const auto& jd = entry["dtype"];
    const auto* d = jd.is_string() ? std::find_if(std::begin(kDTypes), std::end(kDTypes),
                                                  [&](const DTypeInfo& x) { return jd.get<std::string>() == x.name; })
                                   : std::end(kDTypes);
    if (d == std::end(kDTypes)) throw InputError(path, where + " has unsupported dtype " + brief_json(jd));
    ParsedTensor t{name, d->type, {}, nullptr, 0};
    if (!entry["shape"].is_array()) throw InputError(path, where + " shape is not an array");
    // The element count as Tensor::numel() will compute it, dimension by dimension, and
    // the byte count: every step must fit int64 (a [2^61] F64 shape needs 2^64 bytes,
    // which must not wrap to 0 and match an empty range).
    std::optional<std::int64_t> numel = 1;
    for (const auto& s : entry["shape"]) {
      if (!s.is_number_unsigned()) throw InputError(path, where + " has a negative or non-integer dimension");
      const std::uint64_t dim = s.get<std::uint64_t>();
      numel = dim > std::uint64_t(INT64_MAX) ? std::nullopt : checked_mul(numel, std::int64_t(dim));
      if (!numel) throw InputError(path, where + " shape overflows 64 bits");
      t.shape.push_back(std::int64_t(dim));
    }
    const std::optional<std::int64_t> bytes = checked_mul(*numel, std::int64_t(d->size));
    if (!bytes) throw InputError(path, where + " shape needs more than 2^63 bytes");
    const auto& off = entry["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw InputError(path, where + " data_offsets is not a pair of non-negative integers");
    std::uint64_t begin = off[0].get<std::uint64_t>(), end = off[1].get<std::uint64_t>();
    if (begin > end || end > data_len)
      throw InputError(path, where + " data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                                 ") lie outside the " + std::to_string(data_len) + " data bytes (truncated file?)");
    if (end - begin != std::uint64_t(*bytes))
      throw InputError(path, where + " holds " + std::to_string(end - begin) + " bytes but its shape needs " +
                                 std::to_string(*bytes));
    t.data = data + begin;
    t.size = end - begin;
    ranges.push_back({begin, end, where});
    out.push_back(std::move(t));
  }
  // The data must be tiled exactly: every byte belongs to one tensor.
  std::sort(ranges.begin(), ranges.end());
  std::uint64_t covered = 0;
  const std::string* previous = nullptr;
  for (const Range& r : ranges) {
    if (r.begin < covered)
      throw InputError(path, r.name + " data [" + std::to_string(r.begin) + ", " + std::to_string(r.end) +
                                 ") overlaps " + *previous + " (which ends at byte " + std::to_string(covered) + ")");
    if (r.begin > covered)
      throw InputError(path, "data bytes [" + std::to_string(covered) + ", " + std::to_string(r.begin) +
                                 ") belong to no tensor (a hole before " + r.name + ")");
    covered = r.end;
    previous = &r.name;
  }
  if (covered != data_len)
    throw InputError(path, std::to_string(data_len - covered) + " trailing bytes after the last tensor");
  return out;
}

}  // namespace

SafetensorsFile read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "cannot open");
  std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  SafetensorsFile file;
  file.path = path;
  for (ParsedTensor& p : parse_safetensors(path, reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size(),
                                           file.metadata)) {
    Tensor t;
    t.dtype = p.dtype;
    t.shape = std::move(p.shape);
    t.bytes.assign(p.data, p.data + p.size);
    file.tensors.emplace(p.name, std::move(t));
  }
  return file;
}

const TensorView& MappedSafetensors::get(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw InputError(path, "missing tensor '" + name + "'");
  return it->second;
}

MappedSafetensors map_safetensors(const std::string& path) {
  MappedSafetensors file;
  file.path = path;
  file.mapping = MappedFile::open(path);
  for (ParsedTensor& p : parse_safetensors(path, file.mapping->data(), file.mapping->size(), file.metadata))
    file.tensors.emplace(p.name, TensorView{p.dtype, std::move(p.shape), p.data, p.size});
  return file;
}

std::string safetensors_header(const std::vector<TensorLayout>& tensors,
                               const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const TensorLayout& t : tensors) {
    std::int64_t numel = 1;
    for (auto d : t.shape) numel *= d;
    const std::uint64_t bytes = std::uint64_t(numel) * dtype_size(t.dtype);
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // align the data to 8 bytes, as the spec recommends
  const std::uint64_t n = json.size();
  return std::string(reinterpret_cast<const char*>(&n), 8) + json;
}

std::string encode_safetensors(const std::vector<std::pair<std::string, Tensor>>& tensors,
                               const std::map<std::string, std::string>& metadata) {
  std::vector<TensorLayout> layout;
  std::size_t data = 0;
  for (const auto& [name, t] : tensors) {
    if (std::int64_t(t.bytes.size()) != t.numel() * std::int64_t(dtype_size(t.dtype)))
      throw std::logic_error("tensor '" + name + "' bytes do not match its shape");
    layout.push_back({name, t.dtype, t.shape});
    data += t.bytes.size();
  }
  std::string out = safetensors_header(layout, metadata);
  out.reserve(out.size() + data);
  for (const auto& [name, t] : tensors) out.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
  return out;
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  write_file_atomic(path, encode_safetensors(tensors, metadata));
}

}  // namespace kvfid::ref
