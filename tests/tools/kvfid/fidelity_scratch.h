#pragma once
// A scratch golden for the fidelity commands' tests: the tiny-llama fixture model, a
// golden of all its taps, and the twin engine's dump of the same taps, each made by
// the kvfid binary as a user would.
#include <string>
#include <vector>

namespace kvfid::test {

struct FidelityScratch {
  std::string dir;
  std::string model;      // kvfid fixture --shape tiny-llama
  std::string golden;     // kvfid golden of `tokens` on it
  std::string candidate;  // kvfid run --engine twin, F32 taps
  std::vector<int> tokens;
};

// Made once per test binary (the golden takes a moment); the caller copies what it changes.
const FidelityScratch& fidelity_scratch();

}  // namespace kvfid::test
