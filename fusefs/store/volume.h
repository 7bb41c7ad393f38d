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

#include <cstdint>
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

}  // namespace roam
