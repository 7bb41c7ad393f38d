// The names of an inode. The first name of an inode is its primary name, kept
// in the inode record (it names the inode in the op log); further names of a
// hard-linked inode are rows of the `links` table. These helpers keep the two
// in step; they change `inode` in memory (the caller puts it) and the `links`
// table through the mutation's transaction. Directory entries are the
// caller's job.
#pragma once

#include <string_view>

#include "fusefs/engine/mutation.h"

namespace roam {

// Gives `inode` one more name and counts it in nlink.
Status add_name(Mutation& m, Inode& inode, uint64_t parent, std::string_view name);
// Takes one name away from a non-directory `inode`. When the primary name goes
// and others remain, one of them becomes primary. An inode left with no name is
// dead but kept (open handles and the op log still refer to it).
Status drop_name(Mutation& m, Inode& inode, uint64_t parent, std::string_view name);
// Moves one name of `inode` from (parent, name) to (new_parent, new_name).
Status move_name(Mutation& m, Inode& inode, uint64_t parent, std::string_view name, uint64_t new_parent,
                 std::string_view new_name);
// Removes every `links` row of `ino` (its names beyond the primary one).
Status drop_extra_names(Mutation& m, uint64_t ino);

}  // namespace roam
