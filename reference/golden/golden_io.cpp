#include "reference/golden/golden_io.h"

#include <fstream>

#include "reference/io/atomic_file.h"
#include "reference/util/input_error.h"
#include "reference/io/safetensors.h"

namespace kvfid::ref {

std::string encode_taps_f64(const TapSet& taps) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  tensors.reserve(taps.size());
  for (const auto& t : taps) tensors.emplace_back(t.name, tensor_f64(t.shape, t.values));
  return encode_safetensors(tensors);
}

void write_golden(const std::string& dir, const TapSet& taps, const nlohmann::json& manifest) {
  write_files_atomic(dir, {{kGoldenTensorsFile, encode_taps_f64(taps)}, {kGoldenManifestFile, manifest.dump(2) + "\n"}});
}

TapSet read_taps(const std::string& path) {
  SafetensorsFile file = read_safetensors(path);
  TapSet taps;
  for (const auto& [name, tensor] : file.tensors)
    taps.push_back({name, tensor.shape, tensor_values(tensor, path + ": tensor '" + name + "'")});
  return taps;
}

Golden read_golden(const std::string& dir) {
  const std::string manifest_path = dir + "/" + kGoldenManifestFile;
  std::ifstream in(manifest_path);
  if (!in) throw InputError(manifest_path, "cannot open (is " + dir + " a golden folder made by kvfid golden?)");
  Golden g;
  try {
    g.manifest = nlohmann::json::parse(in);
    g.tokens = g.manifest.at("tokens").get<std::vector<int>>();
  } catch (const nlohmann::json::exception& e) {
    throw InputError(manifest_path, std::string("not a kvfid manifest: ") + e.what());
  }
  const std::string tensors_path = dir + "/" + kGoldenTensorsFile;
  g.taps = read_taps(tensors_path);
  if (!find_tap(g.taps, "logits")) throw InputError(tensors_path, "has no 'logits' tensor");
  return g;
}

}  // namespace kvfid::ref
