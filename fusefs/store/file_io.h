// The operating system's file calls, behind an interface so that tests can
// inject faults (a full disk, an I/O error) into the data path. The store uses
// only these calls for segment files; LMDB does its own I/O.
#pragma once

#include <sys/types.h>

#include <string>

#include "base/status.h"

namespace roam {

class FileIo {
 public:
  virtual ~FileIo() = default;
  // Each returns a Status naming the call and path on failure; short reads and
  // writes are retried until complete or an error occurs.
  virtual Result<int> open(const std::string& path, int flags, mode_t mode) = 0;
  virtual Status pwrite_all(int fd, const char* buf, size_t len, off_t off) = 0;
  virtual Status pread_all(int fd, char* buf, size_t len, off_t off) = 0;
  virtual Status fdatasync(int fd) = 0;
  virtual void close(int fd) = 0;
};

// The real thing. Not final: fault-injection tests override single calls.
class PosixFileIo : public FileIo {
 public:
  Result<int> open(const std::string& path, int flags, mode_t mode) override;
  Status pwrite_all(int fd, const char* buf, size_t len, off_t off) override;
  Status pread_all(int fd, char* buf, size_t len, off_t off) override;
  Status fdatasync(int fd) override;
  void close(int fd) override;
};

}  // namespace roam
