// AtomicFile / write_file_atomic: write a temporary file next to the target, fsync it, rename it
// over the target, fsync the directory (see atomic_file.h for the guarantees). The temporary file
// is flock()ed by its writer for its whole life: a lock that can be taken belongs to nobody, so
// its file is the leftover of a killed writer and the next commit in that directory removes it.
#include "tracetorch/io/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <filesystem>
#include <random>

#include "tracetorch/core/error.h"
#include "tracetorch/io/pt_file.h"

namespace tt::io {

namespace {

namespace fs = std::filesystem;

constexpr const char* kTempMarker = ".tmp-";

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

// ".NAME.tmp-PID-COUNTER-HEX8" (NAME cut so that the whole stays within NAME_MAX).
std::string temp_name(const std::string& target_name) {
  return "." + target_name.substr(0, 180) + kTempMarker + unique_suffix();
}

bool is_temp_name(const std::string& name) {
  if (name.size() < 2 || name[0] != '.') return false;
  const size_t at = name.rfind(kTempMarker);
  if (at == std::string::npos || at == 0) return false;
  const std::string suffix = name.substr(at + std::strlen(kTempMarker));
  // PID-COUNTER-HEX8
  const size_t a = suffix.find('-');
  const size_t b = a == std::string::npos ? a : suffix.find('-', a + 1);
  if (a == 0 || b == std::string::npos || b == a + 1 || suffix.size() != b + 9) return false;
  for (size_t i = 0; i < suffix.size(); ++i) {
    const char c = suffix[i];
    const bool ok = (i == a || i == b) ? c == '-' : i > b ? std::isxdigit(static_cast<unsigned char>(c)) != 0
                                                          : std::isdigit(static_cast<unsigned char>(c)) != 0;
    if (!ok) return false;
  }
  return true;
}

// The file a path finally names, following symlinks (relative ones from their own folder).
std::string follow_symlinks(const std::string& path) {
  fs::path p(path);
  for (int hops = 0; hops < 40; ++hops) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return p.string();
    char buf[PATH_MAX];
    const ssize_t n = ::readlink(p.c_str(), buf, sizeof buf);
    if (n < 0) throw tt::FileError(path + ": cannot read the symbolic link '" + p.string() + "': " + errno_text(errno));
    const fs::path link(std::string(buf, static_cast<size_t>(n)));
    p = link.is_absolute() ? link : p.parent_path() / link;
  }
  throw tt::FileError(path + ": too many levels of symbolic links");
}

// Removes the temporary files in `dir` whose writers are gone (their lock is free). Best effort:
// the save it follows has already succeeded.
void remove_stale_temp_files(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  const int dfd = ::dirfd(d);
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (!is_temp_name(name)) continue;
    const int fd = ::openat(dfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat opened {}, named {};
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0 && ::fstat(fd, &opened) == 0 && S_ISREG(opened.st_mode) &&
        ::fstatat(dfd, name.c_str(), &named, AT_SYMLINK_NOFOLLOW) == 0 && named.st_dev == opened.st_dev &&
        named.st_ino == opened.st_ino)
      ::unlinkat(dfd, name.c_str(), 0);
    ::close(fd);
  }
  ::closedir(d);
}

void fsync_directory(const std::string& dir, const std::string& path) {
  // Some file systems cannot fsync a directory (EINVAL); that is fine.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  if (rc != 0 && err != EINVAL && err != ENOTSUP)
    throw tt::FileError(path + ": written, but fsync of directory '" + dir + "' failed: " + errno_text(err));
}

// An unnamed file in `dir`, or -1 where the file system (or a missing /proc, needed to name it
// later) does not allow one.
int open_unnamed(const std::string& dir) {
#ifdef O_TMPFILE
  if (::access("/proc/self/fd", X_OK) != 0) return -1;
  return ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
#else
  (void)dir;
  return -1;
#endif
}

}  // namespace

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
  if (path.empty()) throw tt::FileError("cannot write a file with an empty path");
  if (!fs::path(path).has_filename()) throw tt::FileError(path + ": cannot write: the path names a directory");
  target_ = follow_symlinks(path);
  const fs::path target(target_);
  dir_ = target.parent_path().empty() ? "." : target.parent_path().string();

  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw tt::FileError(path + ": cannot create directory '" + dir_ + "': " + ec.message());
  struct stat old {};
  const bool replacing = ::stat(target_.c_str(), &old) == 0;
  if (replacing && S_ISDIR(old.st_mode)) throw tt::FileError(path + ": cannot write: it is a directory");

  fd_ = open_unnamed(dir_);
  while (fd_ < 0) {
    std::string candidate = (fs::path(dir_) / temp_name(target.filename().string())).string();
    const int fd = ::open(candidate.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
      if (errno == EEXIST) continue;
      throw tt::FileError(path + ": cannot create a temporary file in '" + dir_ + "': " + errno_text(errno));
    }
    // Between open and flock a cleaner may have taken the file for a leftover and removed it.
    struct stat st {};
    if (::flock(fd, LOCK_EX) == 0 && ::fstat(fd, &st) == 0 && st.st_nlink > 0) {
      fd_ = fd;
      temp_name_ = candidate;
    } else {
      ::close(fd);
    }
  }
  if (temp_name_.empty() && ::flock(fd_, LOCK_EX) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    throw tt::FileError(path + ": cannot lock a temporary file in '" + dir_ + "': " + errno_text(err));
  }
  if (replacing) {
    // Keep who may read the file: an exact copy of the old permission bits (umask does not apply).
    if (::fchmod(fd_, old.st_mode & 07777) != 0) {
      const int err = errno;
      discard();
      throw tt::FileError(path + ": cannot set the mode of the new file: " + errno_text(err));
    }
    // Best effort: only root (or a member of the group) may give a file away.
    if ((old.st_uid != ::geteuid() || old.st_gid != ::getegid()) && ::fchown(fd_, old.st_uid, old.st_gid) != 0)
      errno = 0;
  }
}

AtomicFile::~AtomicFile() { discard(); }

void AtomicFile::discard() {
  if (!committed_ && !temp_name_.empty()) ::unlink(temp_name_.c_str());
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  temp_name_.clear();
}

void AtomicFile::write(const void* data, size_t size) {
  if (fd_ < 0 || committed_) throw tt::FileError(path_ + ": write after commit");
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw tt::FileError(path_ + ": write failed: " + errno_text(errno));
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
}

void AtomicFile::commit() {
  if (fd_ < 0 || committed_) throw tt::FileError(path_ + ": committed twice");
  if (::fsync(fd_) != 0) throw tt::FileError(path_ + ": fsync failed: " + errno_text(errno));
  const std::string target_name = fs::path(target_).filename().string();
  // An unnamed file gets a (locked) name just before the rename.
  while (temp_name_.empty()) {
    std::string candidate = (fs::path(dir_) / temp_name(target_name)).string();
    const std::string self = "/proc/self/fd/" + std::to_string(fd_);
    if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, candidate.c_str(), AT_SYMLINK_FOLLOW) == 0) {
      temp_name_ = candidate;
    } else if (errno != EEXIST) {
      throw tt::FileError(path_ + ": cannot name the temporary file in '" + dir_ + "': " + errno_text(errno));
    }
  }
  if (::rename(temp_name_.c_str(), target_.c_str()) != 0)
    throw tt::FileError(path_ + ": cannot rename the temporary file into place: " + errno_text(errno));
  committed_ = true;
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw tt::FileError(path_ + ": close failed: " + errno_text(errno));
  fsync_directory(dir_, path_);
  remove_stale_temp_files(dir_);
}

void write_file_atomic(const std::string& bytes, const std::string& path) {
  AtomicFile file(path);
  file.write(bytes.data(), bytes.size());
  file.commit();
}

}  // namespace tt::io
