#include "reference/io/atomic_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <fcntl.h>
#include <unistd.h>

#include "reference/util/input_error.h"
#include "reference/util/interrupt.h"

namespace kvfid::ref {
namespace fs = std::filesystem;

namespace {

std::string temp_name(const std::string& path) { return path + ".tmp." + std::to_string(::getpid()); }

void write_and_sync(const std::string& path, const std::function<void(const ByteSink&)>& produce) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw InputError(path, std::string("cannot write: ") + std::strerror(errno));
  const ByteSink sink = [&](std::string_view bytes) {
    throw_if_interrupted();  // between pieces: the catch below removes this file
    std::size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw InputError(path, std::string("write failed: ") + std::strerror(errno));
      }
      done += std::size_t(n);
    }
  };
  try {
    produce(sink);
  } catch (...) {  // a failed write or a failing producer: no partial file stays behind
    ::close(fd);
    ::unlink(path.c_str());
    throw;
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(path.c_str());
    throw InputError(path, std::string("write failed: ") + std::strerror(err));
  }
}

void write_and_sync(const std::string& path, std::string_view bytes) {
  write_and_sync(path, [bytes](const ByteSink& sink) { sink(bytes); });
}

}  // namespace

void write_file_atomic(const std::string& path, std::string_view bytes) {
  const CleanupScope scope;  // a signal now removes the temporary (interrupt.h)
  const std::string tmp = temp_name(path);
  write_and_sync(tmp, bytes);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw InputError(path, std::string("cannot rename into place: ") + std::strerror(err));
  }
}

namespace {

// "out/" names the folder "out".
fs::path folder_path(const std::string& dir) {
  fs::path target = fs::path(dir).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();
  return target;
}

}  // namespace

void check_output_folder(const std::string& dir) {
  std::error_code ec;
  const fs::path target = folder_path(dir);
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  if (!fs::is_directory(parent, ec)) throw InputError(dir, "parent folder does not exist");
  if (fs::exists(target, ec) && !fs::is_directory(target, ec)) throw InputError(dir, "exists and is not a folder");
}

void write_files_atomic(const std::string& dir, const std::vector<std::pair<std::string, std::string>>& files) {
  std::vector<StreamedFile> streamed;
  for (const auto& file : files)  // (clang 14 cannot capture a structured binding)
    streamed.push_back({file.first, [&bytes = file.second](const ByteSink& sink) { sink(bytes); }});
  write_files_atomic_streamed(dir, streamed);
}

void write_files_atomic_streamed(const std::string& dir, const std::vector<StreamedFile>& files) {
  check_output_folder(dir);
  std::error_code ec;
  const fs::path target = folder_path(dir);
  const fs::path staging = temp_name(target.string());
  const CleanupScope scope;  // a signal now removes the staging folder (interrupt.h)
  fs::remove_all(staging, ec);
  if (!fs::create_directory(staging, ec))
    throw InputError(dir, "cannot create a folder beside it: " + ec.message());
  try {
    for (const StreamedFile& f : files) write_and_sync((staging / f.name).string(), f.write);
    throw_if_interrupted();  // the last chance before the files land
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }
  // Each rename is atomic; files land only after every one of them was written.
  fs::create_directories(target, ec);
  for (const StreamedFile& f : files) {
    if (std::rename((staging / f.name).c_str(), (target / f.name).c_str()) != 0) {
      int err = errno;
      fs::remove_all(staging, ec);
      throw InputError((target / f.name).string(), std::string("cannot move into place: ") + std::strerror(err));
    }
  }
  fs::remove_all(staging, ec);
}

}  // namespace kvfid::ref
