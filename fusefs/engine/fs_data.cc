// Data operations: read (checksum-verified), write (copy-on-write), fallocate.
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <xxhash.h>

#include <cstring>
#include <memory>
#include <vector>

#include "fusefs/engine/fs.h"
#include "fusefs/engine/mutation.h"
#include "fusefs/engine/read_extents.h"
#include "fusefs/store/volume.h"

namespace roam {

namespace {

struct Chunk {
  uint64_t file_offset;
  uint32_t length;
  SegmentLocation loc;
  uint64_t xxh3;
};

}  // namespace

Result<size_t> Fs::read(uint64_t ino, uint64_t offset, size_t size, char* buf) {
  auto n = read_once(ino, offset, size, buf);
  // Compaction moved a blob and removed its old segment after this read's
  // snapshot was taken: the new snapshot has the new location.
  if (!n && n.status().err() == ESTALE) return read_once(ino, offset, size, buf);
  return n;
}

// The extents of a read and their blobs, looked up under the store's lock;
// the segments are read after it is released.
struct Fs::ReadPlan {
  size_t size = 0;  // bytes to return, clamped to the file's size
  std::vector<ReadPiece> pieces;
};

Result<Fs::ReadPlan> Fs::plan_read(uint64_t ino, uint64_t offset, size_t size) {
  ROAM_ASSIGN(ReadTxn txn, store_.begin_read());
  PastView v = view(txn);
  ROAM_ASSIGN(Inode inode, v.existing_inode(ino));
  if (S_ISDIR(inode.mode)) return Status::error(EISDIR, "is a directory");
  ReadPlan plan;
  if (offset >= inode.size) return plan;
  plan.size = static_cast<size_t>(std::min<uint64_t>(size, inode.size - offset));
  ROAM_ASSIGN(auto extents, v.extents_in(ino, offset, plan.size));
  ROAM_ASSIGN(plan.pieces, read_pieces(txn, ino, extents));
  return plan;
}

Result<size_t> Fs::read_once(uint64_t ino, uint64_t offset, size_t size, char* buf) {
  ROAM_ASSIGN(ReadPlan plan, plan_read(ino, offset, size));
  ROAM_TRY(read_from_pieces(store_.segments(), ino, plan.pieces, offset, plan.size, buf));
  return plan.size;
}

Result<Inode> Fs::write(const Caller& c, uint64_t ino, uint64_t offset, std::string_view data, bool kill_privs,
                        bool* mode_changed, bool outside_group) {
  if (mode_changed) *mode_changed = false;
  if (offset + data.size() < offset) return Status::error(EFBIG, "write past the largest file offset");
  if (data.empty()) return getattr(ino);  // POSIX: no other effect (never extends the file, logs nothing)
  ROAM_TRY(admit_live_growth(ino, offset + data.size()));
  ROAM_TRY(admit_growth(data.size()));
  // Data goes to the segments first, outside the writer lock; a crash before
  // the commit below leaves unreferenced bytes, never a reference to missing ones.
  std::vector<Chunk> chunks;
  PendingAppends pending(store_.segments());  // until the blobs are committed (or not)
  for (uint64_t pos = offset; pos < offset + data.size();) {
    uint64_t boundary = (pos / kMaxBlobSize + 1) * kMaxBlobSize;
    auto len = static_cast<uint32_t>(std::min<uint64_t>(boundary, offset + data.size()) - pos);
    std::string_view piece = data.substr(pos - offset, len);
    ROAM_ASSIGN(SegmentLocation loc, store_.segments().append(piece));
    pending.add(loc);
    chunks.push_back({pos, len, loc, XXH3_64bits(piece.data(), piece.size())});
    pos += len;
  }
  ROAM_ASSIGN(Mutation m, Mutation::begin(store_, OpKind::kWrite, c));
  ROAM_ASSIGN(Inode inode, m.inode(ino));
  if (!S_ISREG(inode.mode)) return Status::error(EINVAL, "write to a file that is not regular");
  const uint32_t mode_before = inode.mode;
  if (kill_privs) ROAM_TRY(kill_privileges(m, inode, outside_group).take_status());
  OpRecord& rec = m.record();
  rec.ino = ino;
  ROAM_ASSIGN(rec.path, m.txn().path_of(ino));
  for (const Chunk& ch : chunks) {
    ROAM_ASSIGN(uint64_t blob, m.add_blob(ch.loc, ch.length, ch.xxh3));
    m.write_txn().note_data(ch.loc, data.substr(ch.file_offset - offset, ch.length));  // inline in the WAL if small
    ROAM_TRY(m.remap(ino, ch.file_offset, ch.length, Extent{ch.file_offset, blob, 0, ch.length}));
  }
  inode.size = std::max<uint64_t>(inode.size, offset + data.size());
  if (!kernel_owns_write_times_) inode.mtime = inode.ctime = now_timespec();
  rec.size = inode.size;
  ROAM_TRY(m.put_inode(inode));
  ROAM_TRY(finish(m).take_status());
  if (mode_changed) *mode_changed = inode.mode != mode_before;
  return inode;
}

Status Fs::fallocate(const Caller& c, uint64_t ino, int mode, uint64_t offset, uint64_t length) {
  const int supported = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
  if (mode & ~supported) return Status::error(EOPNOTSUPP, "unsupported fallocate mode");
  if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE))
    return Status::error(EOPNOTSUPP, "punch hole needs keep size");
  if (length == 0 || offset + length < offset) return Status::invalid("bad fallocate range");
  const bool deallocate = mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE);
  // Copy-on-write cannot reserve blocks, but it can refuse what cannot fit.
  if (!deallocate) ROAM_TRY(admit_growth(length));
  ROAM_ASSIGN(Mutation m, Mutation::begin(store_, OpKind::kFallocate, c));
  ROAM_ASSIGN(Inode inode, m.inode(ino));
  if (S_ISDIR(inode.mode)) return Status::error(EISDIR, "is a directory");
  if (!S_ISREG(inode.mode)) return Status::error(ENODEV, "not a regular file");
  OpRecord& rec = m.record();
  rec.ino = ino;
  rec.flags = static_cast<uint32_t>(mode);
  ROAM_ASSIGN(rec.path, m.txn().path_of(ino));
  const Timespec now = now_timespec();
  if (deallocate && offset < inode.size) {
    uint64_t end = std::min(offset + length, inode.size);
    ROAM_TRY(m.remap(ino, offset, end - offset, std::nullopt));
    inode.mtime = now;
  }
  rec.offset = offset;
  rec.length = length;
  if (!(mode & FALLOC_FL_KEEP_SIZE) && offset + length > inode.size) {
    inode.size = offset + length;
    inode.mtime = now;
  }
  rec.size = inode.size;
  inode.ctime = now;
  ROAM_TRY(m.put_inode(inode));
  return finish(m).take_status();
}

Status Fs::admit_live_growth(uint64_t ino, uint64_t end) {
  if (store_.quota_bytes() == 0) return Status::ok();  // no quota: no read transaction per write
  ROAM_ASSIGN(ReadTxn txn, store_.begin_read());
  ROAM_ASSIGN(uint64_t quota, txn.quota_bytes());
  if (quota == 0) return Status::ok();
  ROAM_ASSIGN(auto inode, txn.get_inode(ino));
  if (!inode || live_bytes_of(*inode) == 0 || end <= inode->size) return Status::ok();
  ROAM_ASSIGN(uint64_t live, txn.live_bytes());
  if (live + (end - inode->size) > quota)
    return Status::error(EDQUOT, "the disk's quota (" + std::to_string(quota) + " bytes) is used up");
  return Status::ok();
}

Status Fs::admit_growth(uint64_t bytes) {
  ROAM_ASSIGN(bool ok, volume_.admit(bytes));
  if (ok) return Status::ok();
  if (space_hook_) {
    space_hook_();
    ROAM_ASSIGN(ok, volume_.admit(bytes, /*look_now=*/true));
    if (ok) return Status::ok();
  }
  return Status::error(ENOSPC, "the storage volume is full (the rest is kept for deletes, restores and GC)");
}

}  // namespace roam
