#include "reference/f64/forward_f64.h"

#include "reference/f64/forward_trace.h"

namespace kvfid::ref {

TapSet forward_f64(const Model& model, const std::vector<int>& tokens, const TapSelection& selection) {
  const ForwardTrace<double> trace = trace_forward<double>(model, tokens);
  return to_tap_set(model.config, int(tokens.size()), selection, 0, tap_values(trace, model.config, selection));
}

}  // namespace kvfid::ref
