#include "reference/golden/golden_io.h"

#include <filesystem>

#include "reference/io/atomic_file.h"
#include "reference/util/input_error.h"
#include "reference/io/json_input.h"
#include "reference/io/prompt.h"
#include "reference/io/safetensors.h"
#include "reference/util/brief_text.h"

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
    taps.push_back({name, tensor.shape, tensor_values(tensor, path + ": tensor '" + brief_text(name) + "'")});
  return taps;
}

Golden read_golden(const std::string& dir) {
  const std::string manifest_path = dir + "/" + kGoldenManifestFile;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(manifest_path, ec)) throw InputError(manifest_path, "cannot open (is " + dir + " a golden folder made by kvfid golden?)");
  Golden g;
  g.manifest = parse_json_input(read_text_file(manifest_path), manifest_path, "this manifest");
  if (!g.manifest.is_object()) throw InputError(manifest_path, "not a kvfid manifest: not a JSON object");
  const auto tokens = g.manifest.find("tokens");
  if (tokens == g.manifest.end()) throw InputError(manifest_path, "not a kvfid manifest: it has no \"tokens\"");
  g.tokens = tokens_from_json(*tokens, manifest_path);
  // Every golden is of at least one token; said here, before any command loads a model for it.
  if (g.tokens.empty()) throw InputError(manifest_path, "no tokens");
  const std::string tensors_path = dir + "/" + kGoldenTensorsFile;
  g.taps = read_taps(tensors_path);
  if (!find_tap(g.taps, "logits")) throw InputError(tensors_path, "has no 'logits' tensor");
  return g;
}

}  // namespace kvfid::ref
