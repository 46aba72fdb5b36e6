#pragma once
// A model written as a GGUF file by the tests' own writer (gguf_writer.h): metadata of
// `arch` (llama or qwen2), every matrix in one ggml type (F32, F16 and BF16 rounded to
// nearest even; Q8_0 and Q4_0 encoded by the registry's codecs from FP32, as ggml
// quantizes), norm weights and biases in F32.
#include <cstdint>
#include <string>

#include "reference/model/model.h"

namespace kvfid::test {

std::string gguf_of(const ref::Model& model, const std::string& arch, std::uint32_t type);

}  // namespace kvfid::test
