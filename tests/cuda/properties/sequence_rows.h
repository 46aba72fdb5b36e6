#pragma once
// The outputs of one sequence's rows gathered over engine steps (logits and every
// layer tap), and their bit-for-bit comparison: the currency of the exactness
// properties.
#include <string>
#include <vector>

#include "cuda/engine/engine.h"

namespace kvfid::test {
using namespace kvfid::engine;  // the engine under test

struct SequenceRows {
  int rows = 0;
  std::vector<float> logits;      // [rows, vocab]
  std::vector<LayerTaps> layers;  // [n_layers]; each field [rows, its width] (backend.h)
};

// Appends rows [first, first + count) of a step's output (taken with taps).
void append_rows(SequenceRows& dst, const StepOutput& out, int first, int count, const ModelConfig& c);

// Feeds `tokens` to sequence `seq` of `engine`, one step per chunk (sizes summing to
// tokens.size()), and returns every row's outputs.
SequenceRows run_chunks(Engine& engine, int seq, const std::vector<int>& tokens, const std::vector<int>& chunks);
// A fresh engine and sequence over `tokens` in one step.
SequenceRows run_one_shot(const Model& model, const EngineOptions& options, const std::vector<int>& tokens);

// Empty when rows [a_first, a_first + count) of a and [b_first, ...) of b hold the same
// FP32 bits in the logits and every tap, and all are finite; otherwise the first
// difference (field, layer, row, index, both values).
std::string rows_difference(const SequenceRows& a, int a_first, const SequenceRows& b, int b_first, int count,
                            const ModelConfig& c);

// Empty unless some logit or tap is NaN/Inf, or the logits are all zero.
std::string rows_gross_failure(const SequenceRows& r);

}  // namespace kvfid::test
