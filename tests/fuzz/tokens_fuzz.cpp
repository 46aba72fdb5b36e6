// Token files (--prompt) and token lists (--tokens): read, then validated against a
// model as every command does.
#include <cstddef>
#include <cstdint>

#include "reference/util/input_error.h"
#include "reference/io/prompt.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = kvfid::ref::fuzz::write_scratch("prompt.tokens", kvfid::ref::fuzz::as_text(data, size));
  try {
    kvfid::ref::validate_tokens(kvfid::ref::read_prompt_file(path), kvfid::ref::fuzz::small_config(), path);
  } catch (const kvfid::ref::InputError&) {
  }
  try {
    kvfid::ref::validate_tokens(kvfid::ref::parse_token_list(std::string(kvfid::ref::fuzz::as_text(data, size)), "--tokens"),
                           kvfid::ref::fuzz::small_config(), "--tokens");
  } catch (const kvfid::ref::InputError&) {
  }
  return 0;
}
