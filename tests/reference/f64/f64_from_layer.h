#pragma once
// The test oracles of the float64 error bound (reference/f64/f64_error_bound.h), built on
// its public pieces; no library code needs them, so they live with the tests.
//
// Worst-case bounds compound: every layer multiplies the bound by roughly the
// condition of attention and the FFN (measured on the tiny fixtures: ~1e3 to 1e4 per
// layer), so end to end they are tight only for the first layer's taps. A layer-local
// check restarts the float64 forward at each layer from the reference's own residual
// stream (the golden's layers.(L-1).out, whose error is half an ulp per element) and
// compares only layer L's taps (or, with first_layer = n_layers, the logits); there the
// bound is within a few orders of magnitude of the observed error.
#include <cmath>
#include <limits>

#include "reference/f64/f64_error_bound.h"
#include "reference/f64/forward_trace.h"

namespace kvfid::test {

struct F64TapsWithBounds {
  ref::TapSet values;  // taps of layers first_layer.. and the logits (trace_tap_specs)
  ref::TapSet bounds;  // same names and shapes
};

// The float64 forward from `residual` ([T, dim], the input of layer first_layer) and the
// bounds of its taps, residual_error ([T, dim]) bounding the residual's own error.
inline F64TapsWithBounds forward_f64_from(const ref::Model& model, int first_layer, const ref::RowMatrix<double>& residual,
                                          const ref::RowMatrix<double>& residual_error,
                                          const ref::TapSelection& selection) {
  const ref::ForwardTrace<double> trace = ref::trace_forward_from<double>(model, first_layer, residual);
  const int T = int(residual.rows());
  return {ref::to_tap_set(model.config, T, selection, first_layer, ref::tap_values(trace, model.config, selection)),
          ref::to_tap_set(model.config, T, selection, first_layer,
                          ref::f64_error_bounds(model, trace, selection, residual_error))};
}

// |forward_f64 - golden| may reach the bound plus the golden's own rounding (half an
// ulp of the exact value, which is at most half the spacing above |golden|).
inline double f64_allowance_against_golden(double bound, double golden) {
  const double g = std::fabs(golden);
  return bound + (std::nextafter(g, std::numeric_limits<double>::infinity()) - g) / 2;
}

}  // namespace kvfid::test
