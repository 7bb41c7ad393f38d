// The versions of one path: every logged change to the files that have been
// at that path, followed across renames (a file renamed away keeps its
// history; a file renamed onto the path brings its history with it).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fusefs/oplog/record.h"
#include "fusefs/store/store.h"

namespace roam {

struct Version {
  OpRecord record;           // the change (undo payload included)
  uint64_t ino = 0;          // the file it changed
  std::optional<Inode> after;  // the file just after the change (nullopt: gone)
};

// In seq order. Finding the files costs one scan of the history of the
// path's directory (the whole log only if that directory no longer exists);
// their changes come from the per-inode index. ENOENT when no file was ever
// at `path`.
Result<std::vector<Version>> versions_of(const StoreTxn& txn, const std::string& path);

}  // namespace roam
