// write_file_atomic: the LevelDB discipline. Write a uniquely named temporary file next to the
// target, flush and fsync it, rename it over the target, then fsync the directory so the rename
// itself survives a crash. Readers see either the old file or the complete new one.
#include "tracetorch/core/error.h"
#include "tracetorch/io/pt_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>

namespace tt::io {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

std::string unique_suffix() {
  static std::atomic<uint64_t> counter{0};
  static thread_local std::mt19937_64 rng{std::random_device{}() ^
                                          static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count())};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%ld-%llu-%08llx", static_cast<long>(::getpid()),
                static_cast<unsigned long long>(counter.fetch_add(1)),
                static_cast<unsigned long long>(rng() & 0xffffffffULL));
  return buf;
}

// Closes and removes the temporary file unless released.
struct TempFile {
  std::string path;
  int fd = -1;
  bool keep = false;
  ~TempFile() {
    if (fd >= 0) ::close(fd);
    if (!keep && !path.empty()) ::unlink(path.c_str());
  }
};

}  // namespace

void write_file_atomic(const std::string& bytes, const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty()) throw tt::FileError("cannot write a file with an empty path");
  const fs::path target(path);
  if (!target.has_filename()) throw tt::FileError(path + ": cannot write: the path names a directory");
  fs::path dir = target.parent_path();
  if (dir.empty()) dir = ".";

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw tt::FileError(path + ": cannot create directory '" + dir.string() + "': " + ec.message());
  if (fs::is_directory(target, ec)) throw tt::FileError(path + ": cannot write: it is a directory");

  TempFile tmp;
  for (int attempt = 0; attempt < 100 && tmp.fd < 0; ++attempt) {
    std::string candidate = (dir / ("." + target.filename().string() + ".tmp-" + unique_suffix())).string();
    int fd = ::open(candidate.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      tmp.path = candidate;
      tmp.fd = fd;
    } else if (errno != EEXIST) {
      throw tt::FileError(path + ": cannot create a temporary file in '" + dir.string() + "': " + errno_text(errno));
    }
  }
  if (tmp.fd < 0) throw tt::FileError(path + ": cannot find a free temporary file name in '" + dir.string() + "'");

  const char* data = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(tmp.fd, data, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw tt::FileError(path + ": write failed: " + errno_text(errno));
    }
    data += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(tmp.fd) != 0) throw tt::FileError(path + ": fsync failed: " + errno_text(errno));
  int fd = tmp.fd;
  tmp.fd = -1;
  if (::close(fd) != 0) throw tt::FileError(path + ": close failed: " + errno_text(errno));
  if (::rename(tmp.path.c_str(), path.c_str()) != 0)
    throw tt::FileError(path + ": cannot rename the temporary file into place: " + errno_text(errno));
  tmp.keep = true;

  // Make the rename durable. Some file systems cannot fsync a directory (EINVAL); that is fine.
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    int rc = ::fsync(dfd);
    int err = errno;
    ::close(dfd);
    if (rc != 0 && err != EINVAL && err != ENOTSUP)
      throw tt::FileError(path + ": written, but fsync of directory '" + dir.string() + "' failed: " + errno_text(err));
  }
}

}  // namespace tt::io
