// Whole-store consistency and integrity check: what `roamctl scrub` runs and
// what the crash tests assert after every remount.
//
// Structure: every directory entry names a live inode of the entry's type;
// every live inode's link count equals the names it has (directories: 2 plus
// subdirectories); extents do not overlap, lie inside the file and name
// existing blobs; each blob's reference count equals the extents (live, and
// held by op log undo payloads) that name it.
// Data (when asked): every blob's bytes match its XXH3 checksum. A damaged blob
// is reported with the paths of the files that use it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fusefs/store/store.h"

namespace roam {

struct CheckReport {
  uint64_t inodes = 0;
  uint64_t live_inodes = 0;
  uint64_t dirents = 0;
  uint64_t extents = 0;
  uint64_t blobs = 0;
  uint64_t log_records = 0;
  uint64_t bytes_verified = 0;
  std::vector<std::string> problems;  // one sentence each
  bool ok() const { return problems.empty(); }
};

// Reads the store in one read transaction; never changes it.
Result<CheckReport> check_store(Store& store, bool verify_data);

}  // namespace roam
