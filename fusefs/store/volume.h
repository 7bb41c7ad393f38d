// The storage volume a store lives on: its size and free space, and the part
// of it that growing writes leave free (docs/crash-model.md, "A full volume").
//
// The reserve is what keeps a full volume from wedging a disk: a write that
// adds data fails with ENOSPC while the volume's free space would drop under
// it, so the metadata commits that deletes, retention changes, restores and
// GC need (and the segment copies of compaction) still find room. Together
// with the space the store keeps allocated ahead of itself (the WAL's,
// segments' and LMDB's zeros: kWalReserve, kSegmentReserve, kLmdbReserve).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "base/status.h"

namespace roam {

struct VolumeSpace {
  uint64_t total = 0;  // bytes of the volume
  uint64_t avail = 0;  // bytes an unprivileged writer may still use
};

// statvfs of the volume holding `dir`; the errno of statvfs on failure.
Result<VolumeSpace> volume_space(const std::string& dir);

// Free bytes growing writes leave on a volume of `total` bytes: 1/32 of it,
// at least 4 MiB and at most 256 MiB.
uint64_t growth_reserve(uint64_t total);

// Under this much free space the volume is under pressure: GC lets history go
// (oldest first, down to retention's minimum window) until it is above again.
inline uint64_t pressure_mark(uint64_t total) { return 2 * growth_reserve(total); }

// Whether growing writes still fit above a volume's reserve, without a statvfs
// for every write. It trusts its last look at the volume for kMaxAge, and
// only while the bytes it admitted since could not have used half of the
// headroom (free space above the reserve) it saw then; a "no" is always from
// a fresh look. Other writers on the volume (other disks) may use space
// between looks: the reserve absorbs that. Thread-safe.
class VolumeWatch {
 public:
  static constexpr std::chrono::milliseconds kMaxAge{100};

  using Look = std::function<Result<VolumeSpace>(const std::string& dir)>;
  // `look` is volume_space, or a test's fake volume.
  explicit VolumeWatch(std::string dir, Look look = volume_space) : dir_(std::move(dir)), look_(std::move(look)) {}
  // Whether `bytes` more leave the reserve free; counts them as admitted
  // when they do. `look_now`: look at the volume first (after space was
  // freed). The errno of statvfs on failure.
  Result<bool> admit(uint64_t bytes, bool look_now = false);

 private:
  bool trusts_last_look(uint64_t bytes) const;  // mu_ held

  const std::string dir_;
  const Look look_;
  std::mutex mu_;  // the fields below
  VolumeSpace seen_{};
  std::chrono::steady_clock::time_point seen_at_{};
  bool seen_once_ = false;
  uint64_t admitted_since_ = 0;  // bytes admitted since seen_at_
};

}  // namespace roam
