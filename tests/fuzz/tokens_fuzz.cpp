// Token files (--prompt) and token lists (--tokens): read, then validated against a
// model as every command does.
#include <cstddef>
#include <cstdint>

#include "reference/util/input_error.h"
#include "reference/io/prompt.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

kvfid::ref::ModelConfig small_config() {
  kvfid::ref::ModelConfig c;
  c.vocab = 256, c.dim = 64, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 4, c.head_dim = 16, c.hidden = 172;
  c.max_seq = 256;
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = kvfid::ref::fuzz::write_scratch("prompt.tokens", kvfid::ref::fuzz::as_text(data, size));
  try {
    kvfid::ref::validate_tokens(kvfid::ref::read_prompt_file(path), small_config(), path);
  } catch (const kvfid::ref::InputError&) {
  }
  try {
    kvfid::ref::validate_tokens(kvfid::ref::parse_token_list(std::string(kvfid::ref::fuzz::as_text(data, size)), "--tokens"),
                           small_config(), "--tokens");
  } catch (const kvfid::ref::InputError&) {
  }
  return 0;
}
