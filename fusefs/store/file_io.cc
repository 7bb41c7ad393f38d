#include "fusefs/store/file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

namespace roam {

namespace {
Status errno_status(const char* call, int err) {
  return Status::error(err, std::string(call) + ": " + std::strerror(err));
}
}  // namespace

Result<int> PosixFileIo::open(const std::string& path, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return Status::error(errno, "open " + path + ": " + std::strerror(errno));
  return fd;
}

Status PosixFileIo::pwrite_all(int fd, const char* buf, size_t len, off_t off) {
  while (len > 0) {
    ssize_t n = ::pwrite(fd, buf, len, off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status("pwrite", errno);
    }
    buf += n, len -= static_cast<size_t>(n), off += n;
  }
  return Status::ok();
}

Status PosixFileIo::pread_all(int fd, char* buf, size_t len, off_t off) {
  while (len > 0) {
    ssize_t n = ::pread(fd, buf, len, off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status("pread", errno);
    }
    if (n == 0) return Status::io("pread: segment is shorter than its blob table says");
    buf += n, len -= static_cast<size_t>(n), off += n;
  }
  return Status::ok();
}

Status PosixFileIo::fdatasync(int fd) {
  if (::fdatasync(fd) < 0) return errno_status("fdatasync", errno);
  return Status::ok();
}

void PosixFileIo::close(int fd) { ::close(fd); }

}  // namespace roam
