#pragma once
// Every codec of reference/formats/quant/registry.h run on the device, for
// gpu_quant_test: blocks encoded one per thread, elements decoded one per thread. Each
// throws BackendUnavailable without a CUDA build or a usable device.
#include <cstdint>
#include <vector>

#include "reference/formats/quant/codec.h"

namespace kvfid::test {
using namespace kvfid::ref;  // the specification's types

// x: [n_blocks * block] -> [n_blocks * bytes], format = index in Codecs.
std::vector<std::uint8_t> device_encode(int format, const std::vector<float>& x, const quant::CodecParams& p);
// blocks: [n_blocks * bytes] -> [n_blocks * block].
std::vector<float> device_decode(int format, const std::vector<std::uint8_t>& blocks, const quant::CodecParams& p);

}  // namespace kvfid::test
