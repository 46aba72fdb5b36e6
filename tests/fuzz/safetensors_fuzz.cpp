// read_safetensors on arbitrary bytes, then every accepted tensor decoded: a file the
// reader accepts must be safe to use whole.
#include <cstddef>
#include <cstdint>

#include "reference/io/input_error.h"
#include "reference/io/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = kvfid::fuzz::write_scratch("model.safetensors", kvfid::fuzz::as_text(data, size));
  try {
    const kvfid::SafetensorsFile file = kvfid::read_safetensors(path);
    for (const auto& [name, tensor] : file.tensors) {
      if (tensor.bytes.size() != std::size_t(tensor.numel()) * kvfid::dtype_size(tensor.dtype)) __builtin_trap();
      try {
        (void)kvfid::tensor_values(tensor, name);  // integer dtypes are refused here
      } catch (const kvfid::InputError&) {
      }
    }
  } catch (const kvfid::InputError&) {
  }
  return 0;
}
