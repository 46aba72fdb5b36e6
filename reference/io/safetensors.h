#pragma once
// safetensors: an 8-byte little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}},
// then the tensor bytes. Readable by numpy, torch and the safetensors package.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace kvfid::ref {

enum class DType { F64, F32, F16, BF16, I64, I32, U8 };

std::size_t dtype_size(DType t);
std::string dtype_name(DType t);  // as in safetensors: "F64", "BF16", ...

struct Tensor {
  DType dtype = DType::F64;
  std::vector<std::int64_t> shape;
  std::vector<std::uint8_t> bytes;  // little-endian, row-major

  std::int64_t numel() const;
};

Tensor tensor_f64(std::vector<std::int64_t> shape, const std::vector<double>& values);
Tensor tensor_f32(std::vector<std::int64_t> shape, const std::vector<float>& values);

// Exact float64 values of an F64/F32/F16/BF16 tensor. `where` names it in errors.
std::vector<double> tensor_values(const Tensor& t, const std::string& where);

struct SafetensorsFile {
  std::string path;
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;

  bool has(const std::string& name) const { return tensors.count(name) != 0; }
  // Throws InputError(path, "missing tensor NAME") when absent.
  const Tensor& get(const std::string& name) const;
};

// Validates the header (size, JSON, dtypes, shapes against offsets, bounds, no overlap
// or gap) and throws InputError(path, ...) naming the first problem.
SafetensorsFile read_safetensors(const std::string& path);

// What the header says of one tensor; its bytes follow the previous tensor's.
struct TensorLayout {
  std::string name;
  DType dtype = DType::F64;
  std::vector<std::int64_t> shape;
};
// The 8-byte length and the JSON header, padded to 8 bytes, of a file holding these
// tensors back to back in this order: a writer can stream the data after it.
std::string safetensors_header(const std::vector<TensorLayout>& tensors,
                               const std::map<std::string, std::string>& metadata = {});
// A tensor read in place: `size` bytes at `data`, inside a MappedSafetensors' mapping.
struct TensorView {
  DType dtype = DType::F64;
  std::vector<std::int64_t> shape;
  const std::uint8_t* data = nullptr;  // little-endian, row-major
  std::uint64_t size = 0;
};

class MappedFile;

// A safetensors file mapped read-only: its tensors are views into the mapping, which
// lives as long as `mapping` (share it to keep views of the weights alive).
struct MappedSafetensors {
  std::string path;
  std::shared_ptr<const MappedFile> mapping;
  std::map<std::string, TensorView> tensors;
  std::map<std::string, std::string> metadata;

  bool has(const std::string& name) const { return tensors.count(name) != 0; }
  // Throws InputError(path, "missing tensor NAME") when absent.
  const TensorView& get(const std::string& name) const;
};

// The same validation as read_safetensors, without copying the tensor bytes.
MappedSafetensors map_safetensors(const std::string& path);

std::vector<double> tensor_values(const TensorView& t, const std::string& where);

// Serializes in the order given; deterministic for identical input.
std::string encode_safetensors(const std::vector<std::pair<std::string, Tensor>>& tensors,
                               const std::map<std::string, std::string>& metadata = {});
// encode_safetensors, written atomically.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace kvfid::ref
