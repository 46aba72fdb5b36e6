// The tap selection: "all", "logits" or a list of names and globs, parsed once, checked
// against the model's tap names, and honoured by tap_specs in canonical order.
#include <gtest/gtest.h>

#include "reference/golden/taps.h"
#include "reference/util/input_error.h"
#include "reference/synth/synthetic_shapes.h"

namespace kvfid::ref {
namespace {

std::vector<std::string> names(const std::vector<TapSpec>& specs) {
  std::vector<std::string> out;
  for (const TapSpec& s : specs) out.push_back(s.name);
  return out;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

TEST(TapGlob, MatchesWholeNames) {
  EXPECT_TRUE(tap_glob_match("layers.0.*", "layers.0.q"));
  EXPECT_TRUE(tap_glob_match("layers.0.*", "layers.0.attn.probs"));  // * crosses dots
  EXPECT_FALSE(tap_glob_match("layers.0.*", "layers.10.q"));
  EXPECT_TRUE(tap_glob_match("layers.*.k", "layers.13.k"));
  EXPECT_FALSE(tap_glob_match("layers.*.k", "layers.13.q"));
  EXPECT_TRUE(tap_glob_match("layers.?.out", "layers.7.out"));
  EXPECT_FALSE(tap_glob_match("layers.?.out", "layers.17.out"));
  EXPECT_FALSE(tap_glob_match("layers.1", "layers.1.q"));  // no implicit suffix
  EXPECT_FALSE(tap_glob_match("logit", "logits"));
  EXPECT_TRUE(tap_glob_match("*", "logits"));
  EXPECT_TRUE(tap_glob_match("**a*tn*", "layers.0.attn.out"));
  EXPECT_FALSE(tap_glob_match("*x*", "layers.0.attn.out"));
}

TEST(TapSelection, AllAndLogitsRoundTrip) {
  EXPECT_EQ(to_string(tap_selection_from_string("all", "t")), "all");
  EXPECT_EQ(to_string(tap_selection_from_string("logits", "t")), "logits");
  const TapSelection list = tap_selection_from_string("logits,layers.0.*,layers.1.k", "t");
  EXPECT_EQ(to_string(list), "logits,layers.0.*,layers.1.k");
  EXPECT_EQ(list.patterns(), (std::vector<std::string>{"logits", "layers.0.*", "layers.1.k"}));
}

TEST(TapSelection, ListSelectsInCanonicalOrderWithLogitsFirst) {
  const ModelConfig c = synthetic_shape("tiny-llama");  // 2 layers
  // Written out of order, and without logits: the specs keep the canonical order and logits.
  const TapSelection s = tap_selection_from_string("layers.1.out,layers.0.*", "t");
  EXPECT_EQ(names(tap_specs(c, 3, s)),
            (std::vector<std::string>{"logits", "layers.0.q", "layers.0.k", "layers.0.v", "layers.0.attn.probs",
                                      "layers.0.attn.out", "layers.0.out", "layers.1.out"}));
  EXPECT_EQ(names(tap_specs(c, 3, TapSelection::logits)), (std::vector<std::string>{"logits"}));
  EXPECT_EQ(tap_specs(c, 3, TapSelection::all).size(), 1u + 2u * 6u);
  EXPECT_EQ(names(tap_specs(c, 3, tap_selection_from_string("logits", "t"))), (std::vector<std::string>{"logits"}));
  EXPECT_EQ(names(tap_specs(c, 3, tap_selection_from_string("*", "t"))), names(tap_specs(c, 3, TapSelection::all)));
}

TEST(TapSelection, WantsLayerTapsOnlyWhenAListCanNameOne) {
  EXPECT_TRUE(TapSelection::all.wants_layer_taps());
  EXPECT_FALSE(TapSelection::logits.wants_layer_taps());
  EXPECT_FALSE(tap_selection_from_string("logits,logits", "t").wants_layer_taps());
  EXPECT_TRUE(tap_selection_from_string("logits,layers.0.q", "t").wants_layer_taps());
  EXPECT_TRUE(TapSelection::logits.wants("logits"));
  EXPECT_FALSE(TapSelection::logits.wants("layers.0.q"));
  EXPECT_TRUE(tap_selection_from_string("layers.0.q", "t").wants("logits"));
}

TEST(TapSelection, BadTextIsInputErrorNamingTheSource) {
  EXPECT_NE(error_of([] { tap_selection_from_string("", "--taps"); }).find("--taps"), std::string::npos);
  EXPECT_NE(error_of([] { tap_selection_from_string("logits,,layers.0.q", "--taps"); }).find("an empty item"),
            std::string::npos);
  EXPECT_NE(error_of([] { tap_selection_from_string("logits,", "--taps"); }).find("an empty item"), std::string::npos);
  EXPECT_NE(error_of([] { tap_selection_from_string("layers.0.q layers.1.q", "--taps"); }).find("character"),
            std::string::npos);
  EXPECT_NE(error_of([] { tap_selection_from_string("layers/0", "--taps"); }).find("'layers/0'"), std::string::npos);
}

TEST(TapSelection, APatternMatchingNoTapIsNamed) {
  const ModelConfig c = synthetic_shape("tiny-llama");  // layers 0 and 1
  EXPECT_EQ(error_of([&] { check_tap_selection(tap_selection_from_string("logits,layers.1.*", "t"), c, "--taps"); }),
            "no error");
  const std::string e =
      error_of([&] { check_tap_selection(tap_selection_from_string("logits,layers.2.*", "t"), c, "--taps"); });
  EXPECT_NE(e.find("--taps"), std::string::npos) << e;
  EXPECT_NE(e.find("'layers.2.*' matches no tap"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { check_tap_selection(tap_selection_from_string("layers.0.query", "t"), c, "--taps"); })
                .find("'layers.0.query'"),
            std::string::npos);
  EXPECT_EQ(error_of([&] { check_tap_selection(TapSelection::all, c, "--taps"); }), "no error");
}

}  // namespace
}  // namespace kvfid::ref
