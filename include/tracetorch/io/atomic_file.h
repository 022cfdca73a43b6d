#pragma once
// tt::io::AtomicFile: replace a file so that every reader, and every crash, sees either the old
// file or the complete new one (LevelDB's discipline), in pieces for streaming writers;
// tt::io::write_file_atomic (declared in pt_file.h) is the one-call form.
//
// - The data goes to an unnamed O_TMPFILE in the target's directory where the file system has
//   them; elsewhere to a named ".NAME.tmp-..." file. Either is flock()ed while its writer lives, so
//   a writer killed mid-save leaves nothing, or a temp file the next commit in that directory
//   removes (it removes only unlocked temp files: concurrent writers are safe).
// - commit() fsyncs the data, renames it over the target and fsyncs the directory.
// - The target keeps its permission bits (and owner, where allowed); a symlink is written through
//   (its final target is replaced, the link stays), as Python's open(path, "wb") does.
// - Parent directories are created.
// Throws tt::FileError naming the path and the system error. Not thread-safe: one writer per
// object; distinct objects (also for the same path: the last commit wins) may run concurrently.
#include <cstddef>
#include <string>

namespace tt::io {

class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);
  // Without commit() the temporary data is discarded and the target stays as it was.
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t size);
  void commit();

  const std::string& path() const { return path_; }

 private:
  void discard();

  std::string path_;    // as given (for messages)
  std::string target_;  // after following symlinks
  std::string dir_;
  std::string temp_name_;  // empty while the data has no name (O_TMPFILE)
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace tt::io
