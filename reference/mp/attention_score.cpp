#include "reference/mp/attention_score.h"

#include "reference/mp/mp_weights.h"

namespace kvfid::ref {

ScoreFinish::ScoreFinish(const ModelConfig& c, const MpArith& arith, bool track)
    : root_(1, arith.precision()), root_r_(exact_radii(1)) {
  const MpArray d = mp_constant(c.score_scale_dim());
  BallArith ball(arith);
  ball.sqrt({root_[0], track ? root_r_[0] : nullptr}, {d[0]});
  if (c.attn_softcap > 0) cap_ = mp_constant(c.attn_softcap);
}

void ScoreFinish::operator()(BallArith& ball, Ball s) const {
  ball.div(s, cball(s), {root_[0], s.r ? root_r_[0] : nullptr});
  if (cap_.size()) ball.soft_cap(s, cball(s), cap_[0]);
}

}  // namespace kvfid::ref
