#include "base/sys/mountinfo.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace roam {

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

std::optional<MountEntry> parse_mountinfo_line(const std::string& line) {
  // id parent major:minor root mount-point options [optional...] - fstype source superoptions
  std::istringstream fields(line);
  std::string id, parent, root, point, word;
  MountEntry m;
  if (!(fields >> id >> parent >> m.device >> root >> point)) return std::nullopt;
  while (fields >> word && word != "-") {
  }
  if (word != "-" || !(fields >> m.fstype >> m.source)) return std::nullopt;
  fields >> m.super_options;
  m.mount_point = unescape(point);
  m.source = unescape(m.source);
  return m;
}

std::vector<MountEntry> read_mountinfo() {
  std::vector<MountEntry> mounts;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    if (auto m = parse_mountinfo_line(line)) mounts.push_back(std::move(*m));
  }
  return mounts;
}

std::optional<MountEntry> mount_at(const std::string& real_path) {
  std::optional<MountEntry> found;
  for (auto& m : read_mountinfo())
    if (m.mount_point == real_path) found = std::move(m);
  return found;
}

std::optional<MountEntry> mount_holding(const std::string& path) {
  char real[PATH_MAX];
  struct stat st {};
  if (!::realpath(path.c_str(), real) || ::stat(real, &st) < 0) return std::nullopt;
  const std::string device = std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
  const std::string where = real;
  std::optional<MountEntry> found;
  for (auto& m : read_mountinfo()) {
    const bool above = m.mount_point == "/" || where == m.mount_point ||
                       where.rfind(m.mount_point + "/", 0) == 0;
    // Stacked or nested mounts: the deepest (and, among equals, last) wins.
    if (m.device == device && above && (!found || m.mount_point.size() >= found->mount_point.size()))
      found = std::move(m);
  }
  return found;
}

}  // namespace roam
