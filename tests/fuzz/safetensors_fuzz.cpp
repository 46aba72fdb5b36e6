// read_safetensors and map_safetensors (the model loaders' path: the same validation
// over a read-only mapping) on arbitrary bytes, then every accepted tensor decoded: a file
// the reader accepts must be safe to use whole, and both readers must agree.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "reference/util/input_error.h"
#include "reference/io/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kvfid::ref;
  const std::string path = fuzz::write_scratch("model.safetensors", fuzz::as_text(data, size));
  bool read_ok = false;
  SafetensorsFile file;
  try {
    file = read_safetensors(path);
    read_ok = true;
    for (const auto& [name, tensor] : file.tensors) {
      if (tensor.bytes.size() != std::size_t(tensor.numel()) * dtype_size(tensor.dtype)) __builtin_trap();
      try {
        (void)tensor_values(tensor, name);  // integer dtypes are refused here
      } catch (const InputError&) {
      }
    }
  } catch (const InputError&) {
  }
  try {
    const MappedSafetensors mapped = map_safetensors(path);
    if (!read_ok || mapped.tensors.size() != file.tensors.size()) __builtin_trap();  // one validation, two readers
    for (const auto& [name, view] : mapped.tensors) {
      const Tensor& copy = file.get(name);
      if (view.size != copy.bytes.size() || view.shape != copy.shape ||
          (view.size && std::memcmp(view.data, copy.bytes.data(), view.size) != 0))
        __builtin_trap();
    }
  } catch (const InputError&) {
    if (read_ok) __builtin_trap();
  }
  return 0;
}
