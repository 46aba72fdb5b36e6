#pragma once
// Shared by the libFuzzer harnesses (tests/fuzz/README.md): a private scratch folder for
// readers that take a path, and the one exception type a parser may throw on bad input.
//
// A harness returns normally when the input was accepted or refused with InputError;
// anything else -- a crash, a sanitizer report, another exception escaping (which
// std::terminate turns into an abort) -- is a finding.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "reference/model/config.h"

namespace kvfid::ref::fuzz {

// A folder of this process's own, created on first use, removed at exit: under
// $KVFID_FUZZ_SCRATCH when set (tools/fuzz), else /dev/shm when it exists (a file write
// per input costs microseconds there), else $TMPDIR.
const std::string& scratch_dir();

// Writes `bytes` to scratch_dir()/name, replacing it; returns the path.
std::string write_scratch(const std::string& name, std::string_view bytes);

// Every size an accepted config describes, as `kvfid info` and the loaders compute them
// (an accepted config whose sizes overflow is a finding).
void use_sizes(const ModelConfig& config);

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// A small valid model shape (tiny-llama's) that token ids are checked against.
ModelConfig small_config();

}  // namespace kvfid::ref::fuzz
