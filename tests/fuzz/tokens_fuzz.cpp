// Token files (--prompt) and token lists (--tokens): read, then validated against a
// model as every command does.
#include <cstddef>
#include <cstdint>

#include "reference/io/input_error.h"
#include "reference/io/prompt.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

kvfid::ModelConfig small_config() {
  kvfid::ModelConfig c;
  c.vocab = 256, c.dim = 64, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 4, c.head_dim = 16, c.hidden = 172;
  c.max_seq = 256;
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = kvfid::fuzz::write_scratch("prompt.tokens", kvfid::fuzz::as_text(data, size));
  try {
    kvfid::validate_tokens(kvfid::read_prompt_file(path), small_config(), path);
  } catch (const kvfid::InputError&) {
  }
  try {
    kvfid::validate_tokens(kvfid::parse_token_list(std::string(kvfid::fuzz::as_text(data, size)), "--tokens"),
                           small_config(), "--tokens");
  } catch (const kvfid::InputError&) {
  }
  return 0;
}
