// The read phase of a restore (restore.h): the past tree to bring back, the
// live tree it replaces, and which inodes can be restored in place. Built
// entirely before the first write, because the PastView reads the current
// state through the same transaction.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "fusefs/oplog/past_view.h"
#include "fusefs/history/restore.h"

namespace roam {

class Mutation;

// One inode of the tree as it was.
struct PastNode {
  Inode inode;  // as at the past seq
  std::map<std::string, std::string> xattrs;
  std::vector<Extent> extents;                          // regular files
  std::vector<std::pair<std::string, uint64_t>> children;  // directories: name -> past ino
  std::string rel;  // path relative to the restored root ("" for the root), first name
  // Its names inside the restored tree: (past ino of the directory, name),
  // first name first; the restored root has one, {0, ""}.
  std::vector<std::pair<uint64_t, std::string>> names;
  uint32_t subdirs = 0;  // directories: child directories
};

// One inode of the tree as it is now.
struct LiveNode {
  Inode inode;
  std::vector<std::pair<uint64_t, std::string>> names;  // its names inside the tree
  std::vector<std::pair<std::string, Dirent>> entries;  // directories
  std::string rel;
};

struct RestorePlan {
  uint64_t past_root = 0;            // 0: nothing was at the path (it is removed)
  std::vector<uint64_t> past_order;  // past inodes, parents before children
  std::map<uint64_t, PastNode> past;
  std::map<uint64_t, LiveNode> live;  // the tree now at the path (empty for --to)
  // Where the restored root goes: entry `name` of live directory `parent`
  // (parent 0: the restored root is the disk's root).
  uint64_t parent = 0;
  std::string name;
  std::string target_path;  // disk path of the restored root
  std::optional<Dirent> target_now;  // what that entry is now
  // Past inodes restored under their own number (all others become copies).
  std::set<uint64_t> in_place;
};

// The byte ranges in which two extent maps (sorted, non-overlapping) name
// different data, coalesced.
using Ranges = std::vector<std::pair<uint64_t, uint64_t>>;
Ranges differing_ranges(const std::vector<Extent>& a, const std::vector<Extent>& b);

Result<RestorePlan> plan_restore(const StoreTxn& txn, PastView& past, const RestoreRequest& req);

// Writes `plan` through `m` (restore.cc), without committing. Several plans
// may be applied in one mutation (an undo, undo.h) when all were made before
// the first was applied (a PastView reads the current state, which the
// first write changes), their paths lie apart (none inside another), and no
// inode is restored in place by two of them.
struct AppliedPlan {
  RestoreResult result;
  uint64_t root_ino = 0;  // the inode now at the restored path (or that was, when removed)
};
Result<AppliedPlan> apply_restore_plan(Mutation& m, RestorePlan& plan, const Caller& caller);

}  // namespace roam
