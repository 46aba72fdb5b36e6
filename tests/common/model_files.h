#pragma once
// Model files for loader and CLI tests: a test-side llama2.c writer (independent of
// the reader it checks), exact model comparison, and ways to damage a valid file.
#include <cstdint>
#include <string>

#include "reference/model/model.h"
#include "reference/synth/synthetic_model.h"
#include "reference/synth/synthetic_shapes.h"

namespace kvfid::test {
using namespace kvfid::ref;  // fixtures and helpers speak the specification's types

// A llama2.c v0 checkpoint of `model` (interleaved RoPE, head_dim = dim / n_heads,
// values exactly representable in float32). freq_cis tables are written as zeros.
std::string encode_llama2c(const Model& model);
void write_bytes(const std::string& path, const std::string& bytes);
std::string read_bytes(const std::string& path);

// gtest failures for any difference in configuration or any weight bit.
void expect_same_model(const Model& expected, const Model& actual);

// tiny-llama with llama2.c conventions: interleaved RoPE, max_seq 32, given tying.
ModelConfig tiny_llama2c_config(bool tied);

}  // namespace kvfid::test
