#pragma once
// Op map (attention scores; docs/ops.md): reference here | shared cuda/common/attention_math.h (attn_score, capped_score) | kernel attn_prefill_kernel, attn_decode_kernel | twin TwinBackend::attend | tests Enclosure.ElementaryFunctionsHoldTheTruth (tanh, soft_cap), EngineTwinReference.Gemma2LogitsMatchFloat64Forward, EnginePortableMath.SoftCapAccuracy
// A score from its dot product, as every attention of the reference computes it:
// s = (q.k) / sqrt(d), d = config.score_scale_dim() (head_dim, or Gemma's
// query_pre_attn_scalar), the square root rounded once; then, when the model soft-caps,
// s = cap * tanh(s / cap) (BallArith::soft_cap), before any mask or softmax.
#include "reference/model/config.h"
#include "reference/mp/ball_arith.h"

namespace kvfid::ref {

class ScoreFinish {
 public:
  // track: the scores carry radii (enclosure.h), and so does the rounded square root.
  ScoreFinish(const ModelConfig& config, const MpArith& arith, bool track);
  // s holds q.k on entry (its radius when tracked) and the score on return.
  void operator()(BallArith& ball, Ball s) const;

 private:
  MpArray root_, root_r_, cap_;  // sqrt(d) rounded, its radius; the cap (exact), empty without one
};

}  // namespace kvfid::ref
