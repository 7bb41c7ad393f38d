#include "fusefs/store/volume.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace roam {

Result<VolumeSpace> volume_space(const std::string& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) {
    const int err = errno;
    return Status::error(err, "statvfs of " + dir + ": " + std::strerror(err));
  }
  const uint64_t unit = st.f_frsize ? st.f_frsize : st.f_bsize;
  return VolumeSpace{static_cast<uint64_t>(st.f_blocks) * unit, static_cast<uint64_t>(st.f_bavail) * unit};
}

uint64_t growth_reserve(uint64_t total) { return std::clamp<uint64_t>(total / 32, 4ull << 20, 256ull << 20); }

}  // namespace roam
