#include "tests/tools/kvfid/safetensors_bytes.h"

#include <cstdint>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace kvfid::test {

TensorBytes locate_tensor(const std::string& file_bytes, const std::string& name) {
  constexpr std::size_t kLengthBytes = 8;
  if (file_bytes.size() < kLengthBytes) {
    ADD_FAILURE() << "file of " << file_bytes.size() << " bytes has no safetensors header";
    return {};
  }
  std::uint64_t header_length = 0;
  for (std::size_t i = 0; i < kLengthBytes; ++i)
    header_length |= std::uint64_t(static_cast<unsigned char>(file_bytes[i])) << (8 * i);
  if (header_length > file_bytes.size() - kLengthBytes) {
    ADD_FAILURE() << "header length " << header_length << " runs past the end of the file";
    return {};
  }
  const nlohmann::json header = nlohmann::json::parse(file_bytes.substr(kLengthBytes, header_length));
  if (!header.contains(name)) {
    ADD_FAILURE() << "no tensor '" << name << "' in the header";
    return {};
  }
  const nlohmann::json& entry = header.at(name);
  const std::size_t begin = entry.at("data_offsets").at(0).get<std::size_t>();
  const std::size_t end = entry.at("data_offsets").at(1).get<std::size_t>();
  return {entry.at("dtype").get<std::string>(), kLengthBytes + header_length + begin, end - begin};
}

}  // namespace kvfid::test
