// read_gguf and read_gguf_model (kvfid's GGUF loader) on arbitrary bytes, then every
// accepted model's matrices decoded whole: a file the loader accepts must be safe to
// use, every tensor inside the file.
#include <cstddef>
#include <cstdint>

#include "reference/io/gguf.h"
#include "reference/io/mapped_file.h"
#include "reference/io/gguf_model.h"
#include "reference/util/input_error.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kvfid::ref;
  const std::string path = fuzz::write_scratch("model.gguf", fuzz::as_text(data, size));
  try {
    const GgufFile file = read_gguf(path);
    for (const auto& [name, t] : file.tensors)
      if (t.data < file.mapping->data() || t.data + t.bytes > file.mapping->data() + file.mapping->size()) __builtin_trap();
    const Model m = read_gguf_model(path);
    const ModelConfig& c = m.config;
    if (std::int64_t(c.vocab) * c.dim > (std::int64_t(1) << 26)) return 0;  // decoding a huge accepted model: not this harness's point
    (void)m.embedding.values();
    for (const LayerWeights& l : m.layers) (void)l.wq.values(), (void)l.w2.values();
  } catch (const InputError&) {
  }
  return 0;
}
