// parse_kv_policy_spec and kv_policy_for: every part of the grammar (kv_policy.h), how parts combine, and
// every error, each naming the offending part; cold_end on examples worked by hand.
#include "reference/formats/quant/kv_policy.h"

#include <gtest/gtest.h>

#include "reference/formats/quant/registry.h"
#include "reference/util/input_error.h"

namespace kvfid::ref::quant {
namespace {

// Formats [n_layers] of K or V.
std::vector<std::string> names(const std::vector<KvSlot>& slots) {
  std::vector<std::string> r;
  for (const KvSlot& s : slots) r.push_back(all_formats()[s.format].name);
  return r;
}

using Names = std::vector<std::string>;

TEST(KvPolicyParse, OneFormatForEverything) {
  const KvPolicy p = kv_policy_for(parse_kv_policy_spec("q8_0", "--kv"), 3, 2);
  EXPECT_EQ(names(p.k), (Names{"q8_0", "q8_0", "q8_0"}));
  EXPECT_EQ(names(p.v), (Names{"q8_0", "q8_0", "q8_0"}));
  EXPECT_EQ(p.hot_window, 0);
  EXPECT_FALSE(p.kivi);
  EXPECT_EQ(p.spec, "q8_0");
  for (const KvSlot& s : p.k) EXPECT_EQ(s.scales, (std::vector<float>{1.0f, 1.0f}));
}

TEST(KvPolicyParse, EveryRegisteredFormatIsAName) {
  for (const FormatInfo& f : all_formats()) {
    const KvPolicy p = kv_policy_for(parse_kv_policy_spec(f.name, "--kv"), 1, 1);
    EXPECT_EQ(p.k[0].format, f.index) << f.name;
    EXPECT_EQ(p.v[0].format, f.index) << f.name;
  }
}

// A '.' in a format name (the fractional tq rates, tq2.5_32) is no separator: the
// grammar splits at '+', '=', ':' and ','; one beside a scale's decimal point and a
// rotation's seed, as k, v and edges formats, and in a list of specs.
TEST(KvPolicyParse, FormatNamesWithADot) {
  const KvPolicy p = kv_policy_for(
      parse_kv_policy_spec("k=tq3.5_32+v=tq2.5_128+edges=1:tq3.5_128+scale=0.5+rot=hadamard:7", "--kv"), 3, 1);
  EXPECT_EQ(names(p.k), (Names{"tq3.5_128", "tq3.5_32", "tq3.5_128"}));
  EXPECT_EQ(names(p.v), (Names{"tq3.5_128", "tq2.5_128", "tq3.5_128"}));
  EXPECT_EQ(names(kv_policy_for(parse_kv_policy_spec("tq2.5_32+hot=4+kivi", "--kv"), 1, 1).k), (Names{"tq2.5_32"}));
  EXPECT_EQ(split_kv_spec_list("tq2.5_32,k=tq3.5_128+v=f16", "--kv"),
            (std::vector<std::string>{"tq2.5_32", "k=tq3.5_128+v=f16"}));
  EXPECT_THROW(parse_kv_policy_spec("tq2.6_32", "--kv"), InputError);
}

TEST(KvPolicyParse, KAndVSeparately) {
  const KvPolicy p = kv_policy_for(parse_kv_policy_spec("k=q8_0+v=f16", "--kv"), 2, 1);
  EXPECT_EQ(names(p.k), (Names{"q8_0", "q8_0"}));
  EXPECT_EQ(names(p.v), (Names{"f16", "f16"}));
}

TEST(KvPolicyParse, WhatNothingNamesStaysF32) {
  EXPECT_EQ(names(kv_policy_for(parse_kv_policy_spec("k=q8_0", "--kv"), 1, 1).v), (Names{"f32"}));
  EXPECT_EQ(names(kv_policy_for(parse_kv_policy_spec("v=bf16", "--kv"), 1, 1).k), (Names{"f32"}));
  const KvPolicy hot = kv_policy_for(parse_kv_policy_spec("hot=5", "--kv"), 1, 1);
  EXPECT_EQ(names(hot.k), (Names{"f32"}));
  EXPECT_EQ(hot.hot_window, 5);
}

TEST(KvPolicyParse, KOrVOverridesTheSharedFormatInAnyOrder) {
  for (const char* spec : {"q8_0+v=f16", "v=f16+q8_0"}) {
    const KvPolicy p = kv_policy_for(parse_kv_policy_spec(spec, "--kv"), 1, 1);
    EXPECT_EQ(names(p.k), (Names{"q8_0"})) << spec;
    EXPECT_EQ(names(p.v), (Names{"f16"})) << spec;
  }
}

TEST(KvPolicyParse, EdgesTakeTheFirstAndLastLayers) {
  const KvPolicy p = kv_policy_for(parse_kv_policy_spec("q8_0+edges=2:f16", "--kv"), 6, 1);
  EXPECT_EQ(names(p.k), (Names{"f16", "f16", "q8_0", "q8_0", "f16", "f16"}));
  EXPECT_EQ(names(p.v), (Names{"f16", "f16", "q8_0", "q8_0", "f16", "f16"}));
  // Edges win over k= and v= on their layers, whatever the order.
  const KvPolicy q = kv_policy_for(parse_kv_policy_spec("edges=1:bf16+k=q8_0+v=f16", "--kv"), 3, 1);
  EXPECT_EQ(names(q.k), (Names{"bf16", "q8_0", "bf16"}));
  EXPECT_EQ(names(q.v), (Names{"bf16", "f16", "bf16"}));
  // Edges covering every layer (2N >= n_layers) leave no middle.
  EXPECT_EQ(names(kv_policy_for(parse_kv_policy_spec("q8_0+edges=2:f16", "--kv"), 3, 1).k), (Names{"f16", "f16", "f16"}));
}

TEST(KvPolicyParse, HotWindowKiviAndScale) {
  const KvPolicy p = kv_policy_for(parse_kv_policy_spec("q8_0+hot=64+kivi+scale=0.25", "--kv"), 2, 3);
  EXPECT_EQ(p.hot_window, 64);
  EXPECT_TRUE(p.kivi);
  for (const auto* slots : {&p.k, &p.v})
    for (const KvSlot& s : *slots) EXPECT_EQ(s.scales, (std::vector<float>{0.25f, 0.25f, 0.25f}));
  EXPECT_EQ(p.spec, "q8_0+hot=64+kivi+scale=0.25");
}

TEST(KvPolicyParse, KiviWithBlockedKeysOnSomeLayer) {
  const KvPolicy p = kv_policy_for(parse_kv_policy_spec("k=q8_0+v=f16+edges=1:f16+kivi", "--kv"), 3, 1);
  EXPECT_EQ(names(p.k), (Names{"f16", "q8_0", "f16"}));
  EXPECT_TRUE(p.kivi);
}

// Each bad spec and the text its message must contain (the offending part, or what
// is wrong with the whole).
struct BadSpec {
  const char* spec;
  const char* names;
};

TEST(KvPolicyParse, EveryErrorNamesItsPart) {
  const BadSpec cases[] = {
      {"", "empty KV policy"},
      {"f16+", "empty part"},
      {"+f16", "empty part"},
      {"f16++hot=2", "empty part"},
      {"q9_9", "part 'q9_9': unknown format 'q9_9'; known: f32"},
      {"k=", "part 'k=': unknown format ''"},
      {"v=f8", "part 'v=f8': unknown format 'f8'"},
      {"f16+q8_0", "part 'q8_0': a second format for K and V"},
      {"k=f16+k=q8_0", "part 'k=q8_0': a second K format"},
      {"v=f16+v=q8_0", "part 'v=q8_0': a second V format"},
      {"hot=4+hot=8", "part 'hot=8': a second hot window"},
      {"kivi+q8_0+kivi", "part 'kivi': kivi given twice"},
      {"scale=1+scale=2", "part 'scale=2': a second scale"},
      {"edges=1:f16+edges=2:f16", "part 'edges=2:f16': a second edges setting"},
      {"hot=0", "part 'hot=0': '0' is not a positive integer"},
      {"hot=-3", "part 'hot=-3': '-3' is not a positive integer"},
      {"hot=x", "part 'hot=x': 'x' is not a positive integer"},
      {"hot=", "part 'hot=': '' is not a positive integer"},
      {"hot=99999999999", "'99999999999' is not a positive integer"},
      {"edges=2", "part 'edges=2': expected edges=N:FORMAT"},
      {"edges=0:f16", "part 'edges=0:f16': '0' is not a positive integer"},
      {"edges=:f16", "part 'edges=:f16': '' is not a positive integer"},
      {"edges=1:zz", "part 'edges=1:zz': unknown format 'zz'"},
      {"scale=0", "part 'scale=0': '0' is not a finite positive number"},
      {"scale=-1", "'-1' is not a finite positive number"},
      {"scale=inf", "'inf' is not a finite positive number"},
      {"scale=nan", "'nan' is not a finite positive number"},
      {"scale=2x", "'2x' is not a finite positive number"},
      {"scale=", "'' is not a finite positive number"},
      {"window=4", "part 'window=4': unknown setting 'window'"},
      {"f16+kivi", "part 'kivi': KIVI groups keys by their format's block"},
      {"k=q8_0+edges=1:f16+kivi", "part 'kivi': KIVI groups keys"},  // 2 layers: all edges
  };
  for (const BadSpec& c : cases) {
    try {
      kv_policy_for(parse_kv_policy_spec(c.spec, "--kv"), 2, 1);
      ADD_FAILURE() << "'" << c.spec << "' was accepted";
    } catch (const InputError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("--kv"), std::string::npos) << what;
      EXPECT_NE(what.find(c.names), std::string::npos) << "'" << c.spec << "': " << what;
    }
  }
}

// What no shape can save is refused when the text is parsed; what only a shape refuses
// (edges covering every layer) is refused when the parsed spec meets one, naming the
// source the spec was parsed with.
TEST(KvPolicyParse, KiviIsRefusedAtParseUnlessAShapeDecides) {
  for (const char* spec : {"f16+kivi", "kivi", "k=f16+v=q8_0+kivi", "f16+edges=1:bf16+kivi"})
    EXPECT_THROW(parse_kv_policy_spec(spec, "--kv"), InputError) << spec;
  const KvPolicySpec edges = parse_kv_policy_spec("k=q8_0+edges=1:f16+kivi", "from a file");
  EXPECT_TRUE(kv_policy_for(edges, 3, 1).kivi);  // the middle layer's K is blocked
  try {
    kv_policy_for(edges, 2, 1);
    ADD_FAILURE() << "two layers, both edges in f16: accepted";
  } catch (const InputError& e) {
    EXPECT_EQ(e.source(), "from a file");
    EXPECT_NE(e.problem().find("KV policy 'k=q8_0+edges=1:f16+kivi', part 'kivi': KIVI groups keys"), std::string::npos)
        << e.what();
  }
  EXPECT_NO_THROW(parse_kv_policy_spec("f16+edges=1:q8_0+kivi", "--kv"));  // the edges' K is blocked
}

// The parsed value carries what the text said; the default is the "f32" spec.
TEST(KvPolicyParse, TheParsedSpecIsTheTextsMeaning) {
  const KvPolicySpec s = parse_kv_policy_spec("int4_32+edges=2:f16+hot=64", "--kv");
  EXPECT_EQ(s.text, "int4_32+edges=2:f16+hot=64");
  EXPECT_EQ(s.source, "--kv");
  ASSERT_TRUE(s.both && s.edges && s.hot);
  EXPECT_STREQ(all_formats()[*s.both].name, "int4_32");
  EXPECT_EQ(s.edges->first, 2);
  EXPECT_STREQ(all_formats()[s.edges->second].name, "f16");
  EXPECT_EQ(*s.hot, 64);
  EXPECT_FALSE(s.k || s.v || s.kivi || s.scale);
  const KvPolicy by_default = kv_policy_for(KvPolicySpec{}, 2, 1), f32 = kv_policy_for(parse_kv_policy_spec("f32", "x"), 2, 1);
  EXPECT_EQ(names(by_default.k), names(f32.k));
  EXPECT_EQ(names(by_default.v), names(f32.v));
  EXPECT_EQ(by_default.spec, "f32");
  for (FloatFormat f : {FloatFormat::f32, FloatFormat::f16, FloatFormat::bf16}) {
    const KvPolicy plain = kv_policy_for(plain_kv_policy_spec(f), 2, 1);
    EXPECT_EQ(names(plain.k), (Names{to_string(f), to_string(f)}));
    EXPECT_EQ(names(plain.v), (Names{to_string(f), to_string(f)}));
    EXPECT_EQ(plain.spec, to_string(f));
  }
}

TEST(KvPolicyParse, RejectsAModelWithoutLayersOrHeads) {
  EXPECT_THROW(kv_policy_for(parse_kv_policy_spec("f16", "--kv"), 0, 1), InputError);
  EXPECT_THROW(kv_policy_for(parse_kv_policy_spec("f16", "--kv"), 1, 0), InputError);
}

// cold_end(t, W, B), worked by hand: keys [0, cold_end) are read cold.
TEST(KvPolicyColdEnd, HandWorkedExamples) {
  EXPECT_EQ(cold_end(0, 0, 0), 1);    // no window, no KIVI: everything cold, the own key too
  EXPECT_EQ(cold_end(9, 0, 0), 10);
  EXPECT_EQ(cold_end(9, 4, 0), 6);    // keys 6..9 hot: the 4 most recent, the own one included
  EXPECT_EQ(cold_end(2, 4, 0), 0);    // fewer keys than the window: all hot
  EXPECT_EQ(cold_end(3, 4, 0), 0);
  EXPECT_EQ(cold_end(4, 4, 0), 1);
  EXPECT_EQ(cold_end(30, 0, 32), 0);  // group 0..31 incomplete until token 31
  EXPECT_EQ(cold_end(31, 0, 32), 32); // token 31 completes it: all 32 cold, the own key too
  EXPECT_EQ(cold_end(40, 0, 32), 32);
  EXPECT_EQ(cold_end(63, 0, 32), 64);
  EXPECT_EQ(cold_end(40, 4, 32), 32); // the group bound is the tighter
  EXPECT_EQ(cold_end(63, 4, 32), 60); // the window is the tighter
}

TEST(KvSpecList, SplitsAtEveryCommaAndRefusesEmptyOrRepeatedSpecs) {
  EXPECT_EQ(split_kv_spec_list("f16", "--kv"), std::vector<std::string>{"f16"});
  EXPECT_EQ(split_kv_spec_list("f16,int4_32+hot=16,k=q8_0+v=f16", "--kv"),
            (std::vector<std::string>{"f16", "int4_32+hot=16", "k=q8_0+v=f16"}));
  for (const char* bad : {"", ",", "f16,", ",f16", "f16,,q8_0", "f16,q8_0,f16"}) {
    try {
      split_kv_spec_list(bad, "--kv");
      ADD_FAILURE() << "'" << bad << "' accepted";
    } catch (const InputError& e) {
      EXPECT_EQ(std::string(e.what()).rfind("--kv", 0), 0u) << e.what();
    }
  }
}

// evict=E (eviction_spec.h): parsed into the spec and carried by the policy; its own
// errors named with the part; refused twice and with KIVI.
TEST(KvPolicyParse, AnEvictionRidesOnAnyStorage) {
  const KvPolicySpec spec = parse_kv_policy_spec("q8_0+evict=snapkv:25%,16,7+hot=4", "--kv");
  ASSERT_TRUE(spec.evict);
  EXPECT_EQ(spec.evict->kind, EvictionKind::snapkv);
  EXPECT_EQ(spec.evict->spec(), "snapkv:25%,16,7");
  const KvPolicy p = kv_policy_for(spec, 2, 1);
  ASSERT_TRUE(p.evict);
  EXPECT_EQ(p.evict->budget_for(100, 0), 25);
  EXPECT_EQ(p.hot_window, 4);
  EXPECT_FALSE(kv_policy_for(parse_kv_policy_spec("q8_0", "--kv"), 2, 1).evict);
  for (const auto& [bad, says] : std::vector<std::pair<std::string, std::string>>{
           {"f16+evict=h2o:0", "part 'evict=h2o:0': h2o's budget '0'"},
           {"f16+evict=lru:4", "is not an eviction policy"},
           {"f16+evict=snapkv:8,4,2", "is even"},
           {"f16+evict=h2o:4+evict=tova:4", "a second eviction policy"},
           {"q8_0+kivi+evict=h2o:8", "does not combine with evict="}}) {
    try {
      parse_kv_policy_spec(bad, "--kv");
      ADD_FAILURE() << "'" << bad << "' accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).rfind("--kv", 0), 0u) << e.what();
    }
  }
}

// An eviction's numbers after its commas stay with it: no format name starts with a digit.
TEST(KvSpecList, AnEvictionsCommasStayInItsSpec) {
  EXPECT_EQ(split_kv_spec_list("f16+evict=streaming:4,60,q8_0+evict=snapkv:64,16,7,f16", "--kv"),
            (std::vector<std::string>{"f16+evict=streaming:4,60", "q8_0+evict=snapkv:64,16,7", "f16"}));
  EXPECT_EQ(split_kv_spec_list("f16+evict=h2o:25%,f16", "--kv"), (std::vector<std::string>{"f16+evict=h2o:25%", "f16"}));
  // A digit continues only an eviction (and "4" is then a spec of its own, which no format parses).
  EXPECT_EQ(split_kv_spec_list("f16,4", "--kv"), (std::vector<std::string>{"f16", "4"}));
}

}  // namespace
}  // namespace kvfid::ref::quant
