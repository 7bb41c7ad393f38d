#include "fusefs/gc/pins.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace roam {

namespace {
std::string pin_dir(const std::string& store_dir) { return store_dir + "/pins"; }
}  // namespace

Result<Pin> Pin::take(const std::string& store_dir, uint64_t seq) {
  const std::string dir = pin_dir(store_dir);
  if (::mkdir(dir.c_str(), 0700) < 0 && errno != EEXIST)
    return Status::error(errno, "cannot create " + dir + ": " + std::strerror(errno));
  const std::string path = dir + "/" + std::to_string(::getpid());
  std::ofstream out(path, std::ios::trunc);
  out << seq << "\n";
  out.close();
  if (!out) return Status::error(EIO, "cannot write pin " + path);
  return Pin(path);
}

Pin::~Pin() {
  if (!path_.empty()) ::unlink(path_.c_str());
}

std::optional<uint64_t> oldest_pin(const std::string& store_dir) {
  const std::string dir = pin_dir(store_dir);
  DIR* d = ::opendir(dir.c_str());
  if (!d) return std::nullopt;
  std::optional<uint64_t> oldest;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || pid <= 0) continue;
    const std::string path = dir + "/" + e->d_name;
    if (::kill(static_cast<pid_t>(pid), 0) < 0 && errno == ESRCH) {
      ::unlink(path.c_str());  // its process is gone
      continue;
    }
    std::ifstream in(path);
    uint64_t seq = 0;
    if (in >> seq) oldest = oldest ? std::min(*oldest, seq) : seq;
  }
  ::closedir(d);
  return oldest;
}

}  // namespace roam
