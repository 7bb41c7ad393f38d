// Time travel in the file tree: the `.history` directory at the root of a
// mounted disk (fuse/history_dir.h serves it). This file holds what does not
// need FUSE: which moment a name in `.history` means, which moments a listing
// offers, and how past views get inode numbers of their own.
//
// Inode numbers (docs/restore.md, "Time travel"): the kernel sees one inode
// number space for the live disk and every past view, so a view's inodes are
// renumbered. Live inode numbers are below 2^47 (they count up from 1 and are
// never reused); a number with bit 63 set belongs to `.history`:
//
//   bit 63 | bits 47..62: view index (1..kMaxViews) | bits 0..46: inode at that moment
//
// View index 0 with inode 0 is the `.history` directory itself. A view is
// one op log seq: every name that resolves to the same seq (`-2h`, an ISO
// time, `@EPOCH`) shares one view index, and so one set of inode numbers.
// Indexes are handed out on first use and kept until unmount (the kernel may
// hold a number as long as it likes; roamfs has no forget handler).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "fusefs/store/store.h"

namespace roam::time_travel {

// The directory's name at the root of every disk.
inline constexpr std::string_view kDirName = ".history";

inline constexpr uint64_t kHistoryBit = uint64_t{1} << 63;
inline constexpr unsigned kPastInoBits = 47;
inline constexpr uint64_t kPastInoMask = (uint64_t{1} << kPastInoBits) - 1;
inline constexpr uint32_t kMaxViews = (1u << (63 - kPastInoBits)) - 1;
// The `.history` directory.
inline constexpr uint64_t kDirIno = kHistoryBit;

inline bool is_history_ino(uint64_t ino) { return (ino & kHistoryBit) != 0; }

// A past view's inode as the kernel numbers it. EOVERFLOW when `past_ino`
// does not fit in 47 bits (the disk has had more than 2^47 inodes).
Result<uint64_t> encode_ino(uint32_t view, uint64_t past_ino);

struct PastIno {
  uint32_t view = 0;  // 0: the `.history` directory
  uint64_t ino = 0;   // the inode at that moment
};
// Only for numbers with is_history_ino().
inline PastIno decode_ino(uint64_t ino) {
  return {static_cast<uint32_t>((ino & ~kHistoryBit) >> kPastInoBits), ino & kPastInoMask};
}

// The seqs of the views handed out so far, by index. Thread-safe.
class ViewTable {
 public:
  // The index of the view of `seq`, handing out the next one on first use.
  // ENOSPC once kMaxViews distinct moments have been opened since mount.
  Result<uint32_t> index_of(uint64_t seq);
  // The seq of view `index`; ESTALE for an index never handed out (a number
  // from before a remount).
  Result<uint64_t> seq_of(uint32_t index) const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, uint32_t> by_seq_;
  std::vector<uint64_t> seqs_;  // seqs_[i - 1] is view i
};

// The seq a name in `.history` means: any TIME base/timefmt.h accepts,
// checked as `--at` is (history/moment.h). EINVAL for a name that is no TIME;
// ERANGE for a future moment, one before the disk existed or older than its
// retained history.
Result<uint64_t> moment_named(const StoreTxn& txn, std::string_view name, int64_t now_ns);

// Whether `name` means the same moment whenever it is read (an ISO time,
// @EPOCH), unlike a relative one (-2h, now). False for a name that is no TIME.
bool names_fixed_moment(std::string_view name);

// What listing `.history` offers, oldest first, each with its seq: the start
// of each of the last 10 minutes, the top of each of the last 24 hours, then
// midnight (UTC) of each earlier day, at most a year back; only moments the
// disk existed at and still holds (a disk made a minute ago lists nothing
// yet). Names look like "2026-12-04T23:00Z", which moment_named reads back
// as the same moment.
inline constexpr int kListedMinutes = 10;
inline constexpr int kListedHours = 24;
inline constexpr int kListedDays = 366;
Result<std::vector<std::pair<std::string, uint64_t>>> listed_moments(const StoreTxn& txn, int64_t now_ns);

}  // namespace roam::time_travel
