// Every committed golden small enough to recompute quickly is recomputed from its
// manifest and must reproduce golden.safetensors byte for byte: the golden is a
// function of (model, tokens, taps), never of the machine, the thread count or the
// precision it happened to be certified at. Goldens of generated models (reduced real
// shapes, fixtures/generated/) regenerate the model from its recipe first. The
// enclosure method (the proof, and the one every committed manifest records)
// regenerates every one of them; the agreement method (the cross-check) those of the
// committed fixtures and one generated shape, since the larger generated shapes cost it
// twice the enclosure's time (llama-3.2-1b-l1-v256 and qwen2.5-7b-l1-v256: 13 s each on
// the 2-core machine, against 6.5 s proven).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "reference/golden/golden_io.h"
#include "reference/io/load_model.h"
#include "reference/mp/certify.h"
#include "reference/mp/golden_forward.h"
#include "tests/common/generated_fixtures.h"
#include "tests/common/test_env.h"

namespace kvfid::ref {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxRegeneratedTokens = 64;  // keeps the whole check to seconds

std::string file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The goldens of generated reduced real shapes: head_dim 64 (Qwen2.5-0.5B's widths) and
// head_dim 128 with 7:1 GQA (Qwen2.5-7B's). Their models always regenerate from the
// recipes, so the enclosure test must always check them.
const char* const kGeneratedShapeGoldens[] = {"qwen2.5-0.5b-l1-v256/short", "qwen2.5-7b-l1-v256/short-2"};
// The one generated shape the agreement test regenerates (its generated-model path).
const char* const kAgreementGeneratedShape = "qwen2.5-0.5b-l1-v256/short";

bool generated_model(const std::string& model) { return model.rfind("fixtures/generated/", 0) == 0; }

// One committed golden small enough to recompute, with its model loaded.
struct Regenerable {
  fs::path dir;
  std::string name;  // dir relative to golden/, e.g. "tiny-llama/short"
  fs::path manifest_path;
  nlohmann::json manifest;
  std::vector<int> tokens;
  const Model& model;
};

struct Visited {
  int checked = 0;
  int missing_model = 0;
};

// Calls check(golden) for every committed golden of at most kMaxRegeneratedTokens whose
// model is here (generated ones are generated first) and that `wanted` (given its folder
// relative to golden/ and its manifest's model) keeps, under a trace naming its folder.
Visited for_each_regenerable_golden(const std::function<bool(const std::string&, const std::string&)>& wanted,
                                    const std::function<void(const Regenerable&)>& check) {
  Visited v;
  if (!fs::is_directory(test::golden_dir())) return v;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(test::golden_dir())) {
    const fs::path manifest_path = entry.path() / kGoldenManifestFile;
    if (!fs::exists(manifest_path)) continue;
    const nlohmann::json manifest = nlohmann::json::parse(file_bytes(manifest_path));
    const std::vector<int> tokens = manifest.at("tokens").get<std::vector<int>>();
    const std::string name = fs::relative(entry.path(), test::golden_dir()).generic_string();
    if (tokens.size() > kMaxRegeneratedTokens || !wanted(name, manifest.at("model").get<std::string>())) continue;
    const fs::path model_path = test::ensure_model(manifest.at("model").get<std::string>());
    if (!fs::exists(model_path)) {
      ++v.missing_model;
      continue;
    }
    SCOPED_TRACE(entry.path().string());
    const Model model = load_model(model_path.string());
    check(Regenerable{entry.path(), name, manifest_path, manifest, tokens, model});
    ++v.checked;
  }
  return v;
}

TapSelection recorded_taps(const Regenerable& g) {
  return tap_selection_from_string(g.manifest.at("taps").get<std::string>(), g.manifest_path.string());
}

TEST(GoldenRegen, AgreementReproducesTheCommittedGoldens) {
  bool generated_checked = false;
  auto wanted = [](const std::string& name, const std::string& model) {
    return !generated_model(model) || name == kAgreementGeneratedShape;
  };
  const Visited v = for_each_regenerable_golden(wanted, [&](const Regenerable& g) {
    EXPECT_EQ(g.model.sha256, g.manifest.at("model_sha256").get<std::string>());
    GoldenOptions options;
    options.method = CertificationMethod::agreement;
    options.taps = recorded_taps(g);
    const GoldenResult again = compute_golden(g.model, g.tokens, options);
    EXPECT_TRUE(encode_taps_f64(again.taps) == file_bytes(g.dir / kGoldenTensorsFile))
        << "recomputed taps differ from the committed " << kGoldenTensorsFile;
    generated_checked = generated_checked || g.name == kAgreementGeneratedShape;
  });
  EXPECT_TRUE(generated_checked) << kAgreementGeneratedShape << " not regenerated";
  if (v.checked == 0 && v.missing_model > 0) GTEST_SKIP() << test::kStoriesMissing;
  EXPECT_GT(v.checked, 0) << "no golden/**/" << kGoldenManifestFile << " with at most " << kMaxRegeneratedTokens
                          << " tokens under " << test::golden_dir();
}

// Every committed golden small enough is also proven: certified by enclosures
// (reference/mp/enclosure.h: every value's true result inside a ball that rounds to one
// float64) it comes out byte for byte as committed, so each committed value is the
// correctly rounded float64 of the exact forward, not just two runs' agreement.
TEST(GoldenRegen, CommittedGoldensAreProvenByEnclosures) {
  std::vector<std::string> checked;
  auto every = [](const std::string&, const std::string&) { return true; };
  const Visited v = for_each_regenerable_golden(every, [&](const Regenerable& g) {
    GoldenOptions options;
    options.method = CertificationMethod::enclosure;
    options.taps = recorded_taps(g);
    const GoldenResult proven = compute_golden(g.model, g.tokens, options);
    EXPECT_EQ(proven.certification.at("method_name"), "enclosure");
    EXPECT_TRUE(encode_taps_f64(proven.taps) == file_bytes(g.dir / kGoldenTensorsFile))
        << "the proven taps differ from the committed " << kGoldenTensorsFile;
    checked.push_back(g.name);
  });
  for (const char* dir : kGeneratedShapeGoldens)
    EXPECT_NE(std::find(checked.begin(), checked.end(), dir), checked.end()) << dir << " not regenerated";
  if (v.checked == 0 && v.missing_model > 0) GTEST_SKIP() << test::kStoriesMissing;
  EXPECT_GT(v.checked, 0);
}

// Every committed manifest records a proof consistent with its golden: certified by
// enclosures, at a precision of whole 64-bit limbs at least the requested one (--bits in
// its command, else 128) and at most kvfid's cap, each stage at that precision or
// fewer limbs, every value of golden.safetensors counted, every ball inside its
// float64 rounding interval (a radius under one half ulp), and a margin an enclosure
// at that precision can have (an inexact value's radius is at least its rounding at P,
// half an ulp, so err <= P).
TEST(GoldenRegen, CommittedManifestsRecordAProof) {
  constexpr int kDefaultBits = 128;  // kvfid golden's --bits default
  const int max_bits = GoldenOptions{}.max_precision_bits;
  int checked = 0;
  if (fs::is_directory(test::golden_dir()))
    for (const fs::directory_entry& entry : fs::recursive_directory_iterator(test::golden_dir())) {
      if (!fs::exists(entry.path() / kGoldenManifestFile)) continue;
      SCOPED_TRACE(entry.path().string());
      const Golden g = read_golden(entry.path().string());
      const nlohmann::json& cert = g.manifest.at("certification");
      EXPECT_EQ(cert.at("method_name"), "enclosure");
      EXPECT_FALSE(cert.contains("guard_bits"));
      const std::string command = g.manifest.at("command").get<std::string>();
      const std::size_t bits_at = command.find("--bits ");
      const int requested = bits_at == std::string::npos ? kDefaultBits : std::stoi(command.substr(bits_at + 7));
      const int precision = cert.at("precision_bits").get<int>();
      EXPECT_GE(precision, requested);
      EXPECT_LE(precision, max_bits);
      EXPECT_TRUE(precision == requested || precision % 64 == 0) << precision << " bits: not whole limbs";
      EXPECT_GE(cert.at("attempts").get<int>(), 1);
      EXPECT_EQ(g.manifest.at("precision_bits"), precision);
      for (const int stage : cert.at("stage_precision_bits").get<std::vector<int>>()) {
        EXPECT_LE(stage, precision);
        EXPECT_TRUE(stage == precision || stage % 64 == 0) << stage;
      }
      std::int64_t numel = 0;
      for (const TapTensor& t : g.taps) numel += t.numel();
      EXPECT_EQ(cert.at("values_certified").get<std::int64_t>(), numel);
      const double radius = cert.at("max_radius_half_ulps").get<double>();
      EXPECT_GE(radius, 0.0);
      EXPECT_LT(radius, 1.0);
      EXPECT_GE(cert.at("min_margin_bits").get<long>(), 0);
      EXPECT_LE(cert.at("min_margin_bits").get<long>(), precision - kCertifiedBits);
      ++checked;
    }
  EXPECT_GT(checked, 0) << "no golden/**/" << kGoldenManifestFile << " under " << test::golden_dir();
}

}  // namespace
}  // namespace kvfid::ref
