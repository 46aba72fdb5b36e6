#pragma once
// Outputs appear whole or not at all: data goes to a temporary beside the target
// and is renamed into place only after it was written and flushed.
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace kvfid::ref {

// Throws InputError(path, ...) when the folder is missing or not writable.
void write_file_atomic(const std::string& path, std::string_view bytes);

// The folder write_files_atomic(dir, ...) needs: its parent exists and `dir` is not a
// file. Commands call it before long work so bad output paths fail fast. Throws
// InputError(dir, ...).
void check_output_folder(const std::string& dir);

// Writes several files into `dir` so that a failure leaves none of them: all are
// written to a temporary sibling folder first, then moved into `dir` (created if
// missing). Names are plain file names, no slashes.
void write_files_atomic(const std::string& dir, const std::vector<std::pair<std::string, std::string>>& files);

// A file whose bytes are produced in pieces (a model larger than memory): `write` calls
// the sink as often as it likes, in order.
using ByteSink = std::function<void(std::string_view)>;
struct StreamedFile {
  std::string name;
  std::function<void(const ByteSink&)> write;
};
// write_files_atomic for streamed files: on any failure (an exception from a producer
// included) none of them appears.
void write_files_atomic_streamed(const std::string& dir, const std::vector<StreamedFile>& files);

}  // namespace kvfid::ref
