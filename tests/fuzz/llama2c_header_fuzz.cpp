// llama2.c checkpoints: the header alone (llama2c_config, llama2c_file_bytes) and the
// file through read_llama2c_config and read_llama2c; a header whose file size matches
// loads whole (the fuzzer finds tiny ones).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "reference/util/input_error.h"
#include "reference/io/llama2c.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = kvfid::ref::fuzz::write_scratch("model.bin", kvfid::ref::fuzz::as_text(data, size));
  if (size >= kvfid::ref::kLlama2cHeaderBytes) {
    kvfid::ref::Llama2cHeader header;
    static_assert(sizeof(header) == kvfid::ref::kLlama2cHeaderBytes);
    std::memcpy(&header, data, sizeof(header));  // the file is little-endian, as is x86
    try {
      // As the reader: a header whose file would overflow 64 bits is refused before any
      // other size is computed.
      const kvfid::ref::ModelConfig config = kvfid::ref::llama2c_config(header, "header");
      (void)kvfid::ref::llama2c_file_bytes(config, "header");
      kvfid::ref::fuzz::use_sizes(config);
    } catch (const kvfid::ref::InputError&) {
    }
  }
  try {
    kvfid::ref::fuzz::use_sizes(kvfid::ref::read_llama2c_config(path));
    (void)kvfid::ref::read_llama2c(path);
  } catch (const kvfid::ref::InputError&) {
  }
  return 0;
}
