#pragma once
// A golden folder: golden.safetensors (F64 taps, rounded once from MPFR) and
// manifest.json (model, tokens, precision, certification, version, command).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reference/golden/taps.h"

namespace kvfid::ref {

struct Golden {
  TapSet taps;
  nlohmann::json manifest;
  std::vector<int> tokens;  // manifest["tokens"], parsed
};

inline constexpr const char* kGoldenTensorsFile = "golden.safetensors";
inline constexpr const char* kGoldenManifestFile = "manifest.json";

// Both files appear together or not at all. The safetensors bytes are deterministic.
void write_golden(const std::string& dir, const TapSet& taps, const nlohmann::json& manifest);
// Throws InputError naming the file and the problem (missing file, bad JSON, a tap
// whose shape disagrees with the manifest's config and tokens).
Golden read_golden(const std::string& dir);

// Tap tensors <-> safetensors (F64 for goldens; F32 dumps from engines read the same way).
std::string encode_taps_f64(const TapSet& taps);
TapSet read_taps(const std::string& safetensors_path);

}  // namespace kvfid::ref
