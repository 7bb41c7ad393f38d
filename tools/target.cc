#include "tools/target.h"

#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace roam::ctl {

namespace {

// Undoes mountinfo's octal escapes ("\040" for a space).
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out.push_back(static_cast<char>(std::strtol(s.substr(i + 1, 3).c_str(), nullptr, 8)));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

Result<Target> resolve_target(const std::string& arg) {
  char real[PATH_MAX];
  if (!::realpath(arg.c_str(), real)) return Status::error(errno, arg + ": " + std::strerror(errno));
  const std::string path = real;
  struct stat st {};
  if (::stat((path + "/FORMAT").c_str(), &st) == 0) return Target{path, {}};
  std::ifstream mountinfo("/proc/self/mountinfo");
  for (std::string line; std::getline(mountinfo, line);) {
    // id parent dev root mountpoint options [optional...] - fstype source superopts
    std::istringstream in(line);
    std::string id, parent, dev, root, point, word;
    in >> id >> parent >> dev >> root >> point;
    while (in >> word && word != "-") {
    }
    std::string fstype, source;
    in >> fstype >> source;
    if (unescape(point) != path || fstype != "fuse.roamfs") continue;
    source = unescape(source);
    if (source.rfind("roamfs:", 0) != 0) break;
    return Target{source.substr(7), path};
  }
  return Status::invalid(arg + " is neither a roamdisk store nor the mount point of a running roamfs");
}

std::string disk_path(const Target& t, const std::string& user_path) {
  std::string p = user_path;
  if (!t.mountpoint.empty() && p.rfind(t.mountpoint, 0) == 0 &&
      (p.size() == t.mountpoint.size() || p[t.mountpoint.size()] == '/'))
    p = p.substr(t.mountpoint.size());
  if (p.empty() || p[0] != '/') p = "/" + p;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

}  // namespace roam::ctl
