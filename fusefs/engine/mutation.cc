#include "fusefs/engine/mutation.h"

#include <ctime>

#include "fusefs/oplog/oplog.h"

namespace roam {

Timespec now_timespec() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return {ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec)};
}

Mutation::Mutation(WriteTxn txn, OpKind kind, const Caller& caller) : txn_(std::move(txn)) {
  rec_.kind = kind;
  rec_.caller = caller;
}

Result<Mutation> Mutation::begin(Store& store, OpKind kind, const Caller& caller) {
  ROAM_ASSIGN(WriteTxn txn, store.begin_write());
  if (kind == OpKind::kRestore) txn.exempt_from_quota();  // brings back what the user had
  return Mutation(std::move(txn), kind, caller);
}

Inode Mutation::new_inode(uint32_t mode, const Caller& caller, Timespec now) {
  Inode i;
  i.ino = txn_.counters().next_ino++;
  i.mode = mode;
  i.uid = caller.uid;
  i.gid = caller.gid;
  i.nlink = 1;
  i.atime = i.mtime = i.ctime = now;
  return i;
}

Status Mutation::remember_inode(uint64_t ino) {
  if (!inodes_seen_.insert(ino).second) return Status::ok();
  ROAM_ASSIGN(auto before, txn_.get_inode(ino));
  rec_.inodes_before.push_back({ino, std::move(before), kAllInodeFields});
  return Status::ok();
}

Status Mutation::remember_dirent(uint64_t parent, std::string_view name) {
  if (!dirents_seen_.emplace(parent, std::string(name)).second) return Status::ok();
  ROAM_ASSIGN(auto before, txn_.get_dirent(parent, name));
  rec_.dirents_before.push_back({parent, std::string(name), before});
  return Status::ok();
}

Status Mutation::put_inode(const Inode& inode) {
  ROAM_TRY(remember_inode(inode.ino));
  return txn_.put_inode(inode);
}

Status Mutation::put_dirent(uint64_t parent, std::string_view name, const Dirent& d) {
  ROAM_TRY(remember_dirent(parent, name));
  return txn_.put_dirent(parent, name, d);
}

Status Mutation::del_dirent(uint64_t parent, std::string_view name) {
  ROAM_TRY(remember_dirent(parent, name));
  return txn_.del_dirent(parent, name);
}

Status Mutation::set_xattr(uint64_t ino, std::string_view name, std::string_view value) {
  if (xattrs_seen_.emplace(ino, std::string(name)).second) {
    ROAM_ASSIGN(auto before, txn_.get_xattr(ino, name));
    rec_.xattrs_before.push_back({ino, std::string(name), std::move(before)});
  }
  return txn_.put_xattr(ino, name, value);
}

Status Mutation::del_xattr(uint64_t ino, std::string_view name) {
  if (xattrs_seen_.emplace(ino, std::string(name)).second) {
    ROAM_ASSIGN(auto before, txn_.get_xattr(ino, name));
    rec_.xattrs_before.push_back({ino, std::string(name), std::move(before)});
  }
  ROAM_ASSIGN(bool found, txn_.del_xattr(ino, name));
  if (!found) return Status::error(ENODATA, "no such extended attribute");
  return Status::ok();
}

Status Mutation::remap(uint64_t ino, uint64_t offset, uint64_t length, const std::optional<Extent>& replacement) {
  auto& ranges = rec_.data_before;
  if (!ranges.empty() && ranges.back().ino == ino && ranges.back().offset + ranges.back().length == offset) {
    ranges.back().length += length;  // the next chunk of one write
  } else {
    // A second remap of bytes already remapped would record a before-image
    // that is not the state before the operation.
    for (const DataBefore& d : ranges)
      if (d.ino == ino && offset < d.offset + d.length && d.offset < offset + length)
        return Status::invalid("a mutation remaps each byte at most once");
    ranges.push_back({ino, offset, length, {}});
  }
  if (rec_.ino == 0) rec_.ino = ino;
  if (ranges.size() == 1) {  // the arguments describe the operation's (first) range
    rec_.offset = ranges.front().offset;
    rec_.length = ranges.front().length;
  }
  return txn_.remap(ino, offset, length, replacement, ranges.back().extents);
}

Status Mutation::fill_new_file(uint64_t ino, const std::vector<Extent>& extents) {
  if (extents.empty()) return Status::ok();
  for (const DataBefore& d : rec_.data_before)
    if (d.ino == ino) return Status::invalid("fill_new_file on a file this mutation already remapped");
  ROAM_ASSIGN(auto existing, txn_.extents_in(ino, 0, UINT64_MAX));
  if (!existing.empty()) return Status::invalid("fill_new_file on a file that has data");
  rec_.data_before.push_back({ino, 0, extents.back().end(), {}});
  return txn_.add_extents_to_empty(ino, extents);
}

Result<OpRecord> Mutation::commit() {
  for (InodeBefore& b : rec_.inodes_before) {  // the log keeps only what changed
    ROAM_ASSIGN(auto after, txn_.get_inode(b.ino));
    b.narrow_to(after);
  }
  ROAM_TRY(oplog::append(txn_, rec_));
  ROAM_TRY(txn_.commit());
  return std::move(rec_);
}

}  // namespace roam
