// read_golden with an arbitrary manifest.json beside a valid golden.safetensors, then
// its tokens validated against a model as `kvfid check` and `compare` do.
#include <cstddef>
#include <cstdint>

#include "reference/golden/golden_io.h"
#include "reference/util/input_error.h"
#include "reference/io/prompt.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool tensors_written = [] {
    const kvfid::ref::TapSet taps = {{"logits", {1, 2}, {0.5, -1.25}}};
    kvfid::ref::fuzz::write_scratch(kvfid::ref::kGoldenTensorsFile, kvfid::ref::encode_taps_f64(taps));
    return true;
  }();
  (void)tensors_written;
  const std::string manifest = kvfid::ref::fuzz::write_scratch(kvfid::ref::kGoldenManifestFile, kvfid::ref::fuzz::as_text(data, size));
  try {
    const kvfid::ref::Golden g = kvfid::ref::read_golden(kvfid::ref::fuzz::scratch_dir());
    kvfid::ref::validate_tokens(g.tokens, kvfid::ref::fuzz::small_config(), manifest);
  } catch (const kvfid::ref::InputError&) {
  }
  return 0;
}
