// kvfid bitwise: are two tap dumps the same bits? The question behind cached ==
// recomputed, GPU == twin and chunked == one-shot, asked of any engine's dumps. Only
// tensors count; metadata (which engine, which chunk size) is expected to differ.
#include <cstring>
#include <iostream>

#include "reference/io/safetensors.h"
#include "tools/kvfid/command.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below

namespace {

// Index of the first differing element, or -1.
std::int64_t first_difference(const Tensor& a, const Tensor& b) {
  const std::size_t width = dtype_size(a.dtype);
  for (std::size_t i = 0; i < a.bytes.size(); i += width)
    if (std::memcmp(a.bytes.data() + i, b.bytes.data() + i, width) != 0) return std::int64_t(i / width);
  return -1;
}

int run_bitwise(const ParsedArgs& args) {
  const SafetensorsFile expected = read_safetensors(args.str("expected"));
  const SafetensorsFile actual = read_safetensors(args.str("actual"));
  int differing = 0;
  auto report = [&](const std::string& name, const std::string& what) {
    std::cout << "DIFFERS " << name << ": " << what << '\n';
    ++differing;
  };
  for (const auto& [name, a] : expected.tensors) {
    if (!actual.has(name)) {
      report(name, "missing from " + actual.path);
      continue;
    }
    const Tensor& b = actual.get(name);
    if (a.dtype != b.dtype || a.shape != b.shape) {
      report(name, "dtype or shape differs");
      continue;
    }
    if (std::int64_t at = first_difference(a, b); at >= 0) report(name, "first differing element at flat index " + std::to_string(at));
  }
  for (const auto& [name, b] : actual.tensors)
    if (!expected.has(name)) report(name, "not in " + expected.path);
  std::cout << (differing ? "bitwise: DIFFER (" + std::to_string(differing) + " of " +
                                std::to_string(expected.tensors.size()) + " tensors)"
                          : "bitwise: IDENTICAL (" + std::to_string(expected.tensors.size()) + " tensors)")
            << '\n';
  return differing ? kExitFidelityFailure : kExitPass;
}

}  // namespace

extern const CommandSpec kBitwiseCommand{
    "bitwise",
    "are two tap dumps the same bits? (tensors only, metadata ignored)",
    "Compares every tensor of two safetensors files bit for bit: names, dtypes, shapes and bytes.\n"
    "Use it for properties that must hold exactly: GPU == twin, chunked == one-shot prefill,\n"
    "cached decode == recompute. Prints each differing tensor with its first differing element.",
    {{"expected", "FILE", "safetensors file", true}, {"actual", "FILE", "safetensors file", true}},
    run_bitwise};

}  // namespace kvfid::cli
