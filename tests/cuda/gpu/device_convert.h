#pragma once
// reference/numeric/convert.h's conversions run on the device, element by element, for
// gpu_convert_test. Each throws BackendUnavailable when no device can be used.
#include <cstdint>
#include <vector>

namespace kvfid::test {

std::vector<float> device_f16_to_f32(const std::vector<std::uint16_t>& in);
std::vector<float> device_bf16_to_f32(const std::vector<std::uint16_t>& in);
std::vector<std::uint16_t> device_f32_to_f16(const std::vector<float>& in);
std::vector<std::uint16_t> device_f32_to_bf16(const std::vector<float>& in);

}  // namespace kvfid::test
