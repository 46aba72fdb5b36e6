#pragma once
// A file mapped read-only into memory (MAP_PRIVATE), so that weights are read where
// the file holds them: pages come in from the page cache as they are touched and
// nothing is copied. Shared by every view into it; unmapped with the last one.
#include <cstdint>
#include <memory>
#include <string>

namespace kvfid::ref {

class MappedFile {
 public:
  // Throws InputError(path, ...) when the file cannot be opened or mapped.
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::uint8_t* data() const { return data_; }
  std::uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, const std::uint8_t* data, std::uint64_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  const std::uint8_t* data_;  // [size_] bytes; null for an empty file
  std::uint64_t size_;
};

}  // namespace kvfid::ref
