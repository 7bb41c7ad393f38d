#include "fusefs/sys/mountinfo.h"

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

std::vector<MountEntry> read_mountinfo() {
  std::vector<MountEntry> mounts;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    // id parent major:minor root mount-point options [optional...] - fstype source superoptions
    std::istringstream fields(line);
    std::string id, parent, dev, root, point, word;
    fields >> id >> parent >> dev >> root >> point;
    while (fields >> word && word != "-") {
    }
    MountEntry m;
    fields >> m.fstype >> m.source;
    m.mount_point = unescape(point);
    m.source = unescape(m.source);
    mounts.push_back(std::move(m));
  }
  return mounts;
}

std::optional<MountEntry> mount_at(const std::string& real_path) {
  std::optional<MountEntry> found;
  for (auto& m : read_mountinfo())
    if (m.mount_point == real_path) found = std::move(m);
  return found;
}

}  // namespace roam
