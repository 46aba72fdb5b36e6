// read_safetensors on arbitrary bytes, then every accepted tensor decoded: a file the
// reader accepts must be safe to use whole.
#include <cstddef>
#include <cstdint>

#include "reference/util/input_error.h"
#include "reference/io/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = kvfid::ref::fuzz::write_scratch("model.safetensors", kvfid::ref::fuzz::as_text(data, size));
  try {
    const kvfid::ref::SafetensorsFile file = kvfid::ref::read_safetensors(path);
    for (const auto& [name, tensor] : file.tensors) {
      if (tensor.bytes.size() != std::size_t(tensor.numel()) * kvfid::ref::dtype_size(tensor.dtype)) __builtin_trap();
      try {
        (void)kvfid::ref::tensor_values(tensor, name);  // integer dtypes are refused here
      } catch (const kvfid::ref::InputError&) {
      }
    }
  } catch (const kvfid::ref::InputError&) {
  }
  return 0;
}
