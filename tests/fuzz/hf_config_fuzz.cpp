// read_hf_config on an arbitrary config.json: a config it accepts must describe a model
// whose sizes the rest of kvfid can compute.
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
    (void)kvfid::ref::to_json(config).dump();
  } catch (const kvfid::ref::InputError&) {
  }
  return 0;
}
