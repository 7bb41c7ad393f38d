// Garbage collection: drops history that retention no longer keeps, frees the
// data nothing references any more, and compacts segments that are mostly
// garbage — while the disk stays mounted and in use.
//
// Steps (docs/gc.md):
//   1. expire: drop the oldest op log records while they are older than the
//      age limit or history exceeds the space cap (never the newest record,
//      never one a live past view needs: pins.h); and while the storage
//      volume is under space pressure (volume.h), those older than
//      retention's minimum window, the newest included, until about the
//      space wanted is released;
//   2. free removed files: an inode with no names, no retained record and no
//      open handle goes, with its extents and xattrs (never the highest inode);
//   3. free blobs whose reference count reached zero (never the highest blob);
//   4. compact: copy the live blobs out of each sealed segment whose live
//      fraction is below `compact_below`, make that durable, delete the segment.
//
// Stalls: every change is made in write transactions of at most `batch`
// records, inodes or blobs, so writers wait for one small batch at a time;
// blob bytes are read and copied outside the writer lock.
//
// Safety: a blob is only freed at reference count zero, so nothing any
// retained record or live file names is ever freed; a segment is deleted only
// after the new locations of its live blobs are durable, and only while no
// append into it is pending and no blob committed since the scan lives in it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "fusefs/gc/retention.h"
#include "fusefs/store/store.h"

namespace roam {

struct SpaceUsage {
  uint64_t live_bytes = 0;     // data the current files use
  uint64_t history_bytes = 0;  // data only history holds (replaced or removed)
  uint64_t segment_bytes = 0;  // segment files on disk
  uint64_t records = 0;        // op log records retained
  std::optional<int64_t> oldest_ns;  // the oldest retained record's time
  // Segment bytes neither uses: freed blobs not yet compacted away, and bytes
  // of writes that crashed before their commit.
  uint64_t reclaimable_bytes() const {
    return segment_bytes > live_bytes + history_bytes ? segment_bytes - live_bytes - history_bytes : 0;
  }
};

// One read transaction; changes nothing. Costs a scan of the extents and
// blobs tables.
Result<SpaceUsage> space_usage(Store& store);

struct GcOptions {
  int64_t now_ns = 0;
  double compact_below = 0.5;  // compact a segment whose live bytes are below this fraction
  size_t batch = 256;
  // Inodes with open file handles (never freed); empty: none are open.
  std::function<bool(uint64_t ino)> is_open;
  // Fill GcReport::before/after (each a scan of the extents and blobs tables).
  bool measure = true;
  // Stop after step 1 when it dropped nothing: the periodic run on a disk
  // whose history has not aged since the last run costs one log lookup, not
  // scans of every inode, extent and blob (hundreds of disks share a node).
  bool only_after_expiry = false;
  // The free space under which the volume is under pressure; nullopt:
  // pressure_mark() of its size (volume.h). Tests set it.
  std::optional<uint64_t> pressure_mark;
};

struct GcReport {
  uint64_t records_dropped = 0;
  uint64_t inodes_freed = 0;
  uint64_t blobs_freed = 0;
  uint64_t bytes_freed = 0;      // blob bytes no longer referenced
  uint64_t segments_removed = 0;
  uint64_t bytes_moved = 0;      // live bytes copied by compaction
  uint64_t pressure_wanted = 0;  // bytes space pressure wanted back (0: none)
  uint64_t pressure_dropped = 0; // records dropped while under pressure
  SpaceUsage before, after;
  std::vector<std::string> problems;  // damaged blobs found (their segments are kept)
};

// Requires a writable store. Errors leave the store consistent (each batch
// commits whole); a later run continues.
Result<GcReport> collect_garbage(Store& store, const GcOptions& options);

}  // namespace roam
