#pragma once
// GGUF (ggml's model file, version 3; the specification is ggml's docs/gguf.md): a
// header ("GGUF", u32 version, u64 tensor count, u64 metadata count), metadata
// key-value pairs (u64-length strings; typed scalars, strings and arrays), tensor
// infos (name, u32 n_dims, u64 dims with dims[0] the contiguous one, u32 ggml type,
// u64 offset into the data section) and the data section at the next multiple of
// general.alignment (default 32). Read in place from a read-only mapping: every count,
// length, shape and offset is checked against the file before it is used, and a file
// that breaks any rule is refused with InputError naming the first problem.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace kvfid::ref {

class MappedFile;

// ggml's tensor types kvfid reads (ggml.h's enum ggml_type).
enum class GgmlType : std::uint32_t { f32 = 0, f16 = 1, q4_0 = 2, q8_0 = 8, bf16 = 30 };

// A metadata value: integers of every width as int64 or uint64, floats as double,
// strings, bools, and arrays of any of them (nested arrays included).
struct GgufValue;
using GgufArray = std::vector<GgufValue>;
struct GgufValue {
  std::variant<std::int64_t, std::uint64_t, double, bool, std::string, GgufArray> v;
  std::uint32_t type = 0;  // the file's value type (GGUF_TYPE_*), for messages
};

struct GgufTensor {
  std::vector<std::uint64_t> dims;  // ggml order: dims[0] is the contiguous dimension
  GgmlType type = GgmlType::f32;
  const std::uint8_t* data = nullptr;  // inside the mapping
  std::uint64_t bytes = 0;
};

struct GgufFile {
  std::string path;
  std::shared_ptr<const MappedFile> mapping;
  std::map<std::string, GgufValue> metadata;
  std::map<std::string, GgufTensor> tensors;

  const GgufValue* find(const std::string& key) const;
};

// Bounds beyond which a file is refused rather than believed: no model needs more.
inline constexpr std::uint32_t kGgufMaxArrayDepth = 4;
inline constexpr std::uint32_t kGgufMaxDims = 4;  // GGML_MAX_DIMS

// Whether the file at `path` starts with GGUF's magic (false for folders and short files).
bool is_gguf_file(const std::string& path);

GgufFile read_gguf(const std::string& path);

}  // namespace kvfid::ref
