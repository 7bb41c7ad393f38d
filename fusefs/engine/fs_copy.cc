// copy_file_range within a disk: the destination's extents name the
// source's blobs, so no data is read or written (docs/store-format.md,
// "Shared blobs").
#include <sys/stat.h>

#include <algorithm>

#include "fusefs/engine/fs.h"
#include "fusefs/engine/mutation.h"

namespace roam {

namespace {

Status check_copyable(const Inode& inode) {
  if (S_ISDIR(inode.mode)) return Status::error(EISDIR, "is a directory");
  if (!S_ISREG(inode.mode)) return Status::invalid("copy from or to a file that is not regular");
  return Status::ok();
}

// The part of `e` inside [from, to), or nullopt when it has none.
std::optional<Extent> clip(const Extent& e, uint64_t from, uint64_t to) {
  const uint64_t start = std::max(e.file_offset, from), end = std::min(e.end(), to);
  if (start >= end) return std::nullopt;
  Extent part = e;
  part.file_offset = start;
  part.blob_offset = static_cast<uint32_t>(e.blob_offset + (start - e.file_offset));
  part.length = static_cast<uint32_t>(end - start);
  return part;
}

}  // namespace

Result<uint64_t> Fs::copy_range(const Caller& c, const CopyRange& r) {
  if (r.off_in + r.length < r.off_in || r.off_out + r.length < r.off_out)
    return Status::error(EOVERFLOW, "copy range past the largest file offset");
  if (r.ino_in == r.ino_out && r.off_in < r.off_out + r.length && r.off_out < r.off_in + r.length)
    return Status::invalid("overlapping ranges of one file");
  // No admit_live_growth here, unlike write: a copy puts no bytes in the
  // segments that a refusal would leave behind, and the commit refuses
  // growth past the quota (EDQUOT) by itself, knowing the real length.
  ROAM_ASSIGN(Mutation m, Mutation::begin(store_, OpKind::kCopy, c));
  ROAM_ASSIGN(Inode src, m.inode(r.ino_in));
  ROAM_TRY(check_copyable(src));
  ROAM_ASSIGN(Inode dst, m.inode(r.ino_out));
  ROAM_TRY(check_copyable(dst));
  if (r.off_in >= src.size) return uint64_t{0};  // nothing to copy: no operation to log
  const uint64_t n = std::min({r.length, src.size - r.off_in, kMaxCopyShared});
  if (n == 0) return uint64_t{0};
  // The source's extents are read before the destination changes, so a copy
  // between two ranges of one file shares what the source held.
  ROAM_ASSIGN(auto extents, m.txn().extents_in(r.ino_in, r.off_in, n));
  const uint64_t end_in = r.off_in + n;
  const auto to_out = [&](uint64_t pos_in) { return r.off_out + (pos_in - r.off_in); };
  uint64_t pos = r.off_in;
  for (const Extent& e : extents) {
    auto part = clip(e, r.off_in, end_in);
    if (!part) continue;
    if (part->file_offset > pos) ROAM_TRY(m.remap(r.ino_out, to_out(pos), part->file_offset - pos, std::nullopt));
    Extent shared = *part;  // the same blob bytes, at the destination's offset; remap takes a reference
    shared.file_offset = to_out(part->file_offset);
    ROAM_TRY(m.remap(r.ino_out, shared.file_offset, shared.length, shared));
    pos = part->end();
  }
  if (pos < end_in) ROAM_TRY(m.remap(r.ino_out, to_out(pos), end_in - pos, std::nullopt));  // a hole stays one

  OpRecord& rec = m.record();
  rec.ino = r.ino_out;
  ROAM_ASSIGN(rec.path, m.txn().path_of(r.ino_out));
  ROAM_ASSIGN(rec.name, m.txn().path_of(r.ino_in));
  rec.rdev = r.off_in;
  dst.size = std::max(dst.size, r.off_out + n);
  if (!kernel_owns_write_times_) dst.mtime = dst.ctime = now_timespec();
  rec.size = dst.size;
  ROAM_TRY(m.put_inode(dst));
  ROAM_TRY(finish(m).take_status());
  return n;
}

}  // namespace roam
