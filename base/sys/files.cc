#include "base/sys/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace roam {

Status errno_error(const std::string& what) { return Status::error(errno, what + ": " + std::strerror(errno)); }

Status make_dirs(const std::string& path) {
  for (size_t pos = 1; pos != std::string::npos;) {
    pos = path.find('/', pos + 1);
    const std::string partial = path.substr(0, pos);
    if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) return errno_error("cannot create " + partial);
  }
  return Status::ok();
}

Status sync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_error("cannot open " + dir);
  const bool synced = ::fsync(fd) == 0;
  Status s = synced ? Status::ok() : errno_error("cannot sync " + dir);
  ::close(fd);
  return s;
}

}  // namespace roam
