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

bool VolumeWatch::trusts_last_look(uint64_t bytes) const {
  if (!seen_once_ || std::chrono::steady_clock::now() - seen_at_ > kMaxAge) return false;
  const uint64_t reserve = growth_reserve(seen_.total);
  const uint64_t headroom = seen_.avail > reserve ? seen_.avail - reserve : 0;
  return admitted_since_ + bytes <= headroom / 2;
}

Result<bool> VolumeWatch::admit(uint64_t bytes, bool look_now) {
  std::lock_guard lock(mu_);
  if (look_now || !trusts_last_look(bytes)) {
    ROAM_ASSIGN(seen_, look_(dir_));
    seen_at_ = std::chrono::steady_clock::now();
    seen_once_ = true;
    admitted_since_ = 0;
    const bool fits = seen_.avail >= bytes && seen_.avail - bytes >= growth_reserve(seen_.total);
    if (!fits) return false;
  }
  admitted_since_ += bytes;
  return true;
}

}  // namespace roam
