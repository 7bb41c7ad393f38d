#include "fusefs/sys/files.h"

#include <sys/stat.h>

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

}  // namespace roam
