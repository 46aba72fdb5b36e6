// read_hf_config on an arbitrary config.json: a config it accepts must describe a model
// whose sizes the rest of kvfid can compute.
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "reference/io/hf.h"
#include "reference/io/input_error.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kvfid::fuzz::write_scratch(kvfid::kHfConfigFile, kvfid::fuzz::as_text(data, size));
  try {
    const kvfid::ModelConfig config = kvfid::read_hf_config(kvfid::fuzz::scratch_dir());
    kvfid::fuzz::use_sizes(config);
    (void)kvfid::to_json(config).dump();
  } catch (const kvfid::InputError&) {
  }
  return 0;
}
