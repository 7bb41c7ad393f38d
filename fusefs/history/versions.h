// The versions of one path: every logged change to the files that have been
// at that path, followed across renames (a file renamed away keeps its
// history; a file renamed onto the path brings its history with it).
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "fusefs/oplog/oplog.h"
#include "fusefs/oplog/record.h"
#include "fusefs/store/store.h"

namespace roam {

struct Version {
  OpRecord record;           // the change (undo payload included)
  uint64_t ino = 0;          // the file it changed
  std::optional<Inode> after;  // the file just after the change (nullopt: gone)
};

// In seq order. Finding the files costs one scan of the history of each
// directory that has been at each ancestor path; their changes come from the
// per-inode index. ENOENT when no file was ever
// at `path`.
Result<std::vector<Version>> versions_of(const StoreTxn& txn, const std::string& path);

// The inodes that have been at `path` (now, or in the retained history), found
// the same way. Empty when none was.
Result<std::set<uint64_t>> inodes_ever_at(const StoreTxn& txn, const std::string& path);

// `roamctl log --path`: the records the filter selects, in seq order. When
// only files were ever at the path, it reads their inodes' indexes (fast on
// any log size); for a directory, whose records include everything below it,
// it scans the log.
Status scan_path(const StoreTxn& txn, const oplog::Filter& filter, const std::function<bool(const OpRecord&)>& visit);

}  // namespace roam
