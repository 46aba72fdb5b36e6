// llama2.c checkpoints: the header alone (llama2c_config, llama2c_file_bytes) and the
// file through read_llama2c_config and read_llama2c; a header whose file size matches
// loads whole (the fuzzer finds tiny ones).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "reference/io/input_error.h"
#include "reference/io/llama2c.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = kvfid::fuzz::write_scratch("model.bin", kvfid::fuzz::as_text(data, size));
  if (size >= kvfid::kLlama2cHeaderBytes) {
    kvfid::Llama2cHeader header;
    static_assert(sizeof(header) == kvfid::kLlama2cHeaderBytes);
    std::memcpy(&header, data, sizeof(header));  // the file is little-endian, as is x86
    try {
      // As the reader: a header whose file would overflow 64 bits is refused before any
      // other size is computed.
      const kvfid::ModelConfig config = kvfid::llama2c_config(header, "header");
      (void)kvfid::llama2c_file_bytes(config, "header");
      kvfid::fuzz::use_sizes(config);
    } catch (const kvfid::InputError&) {
    }
  }
  try {
    kvfid::fuzz::use_sizes(kvfid::read_llama2c_config(path));
    (void)kvfid::read_llama2c(path);
  } catch (const kvfid::InputError&) {
  }
  return 0;
}
