// read_hf_config on an arbitrary config.json: a config it accepts must describe a model
// whose sizes the rest of kvfid can compute, and one an HF folder can express again
// (check_hf_expressible: each family's features with that family only; a violation
// escapes as std::invalid_argument, which the fuzzer reports).
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "reference/io/hf.h"
#include "reference/util/input_error.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kvfid::ref::fuzz::write_scratch(kvfid::ref::kHfConfigFile, kvfid::ref::fuzz::as_text(data, size));
  try {
    const kvfid::ref::ModelConfig config = kvfid::ref::read_hf_config(kvfid::ref::fuzz::scratch_dir());
    kvfid::ref::fuzz::use_sizes(config);
    kvfid::ref::check_hf_expressible(config, "hf_config_fuzz");
    (void)kvfid::ref::to_json(config).dump();
  } catch (const kvfid::ref::InputError&) {
  }
  return 0;
}
