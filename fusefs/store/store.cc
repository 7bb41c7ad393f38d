// Reading and writing the tables through transactions (store.h). The
// durability point and checkpoints are in store_sync.cc; creating, opening,
// upgrading and recovering a store in store_open.cc.
#include "fusefs/store/store.h"

#include <sys/mman.h>

#include <algorithm>

#include "fusefs/store/wal_format.h"

#include "fusefs/store/codec.h"

namespace roam {

// ---- StoreTxn: reads ----

Result<std::optional<Inode>> StoreTxn::get_inode(uint64_t ino) const {
  ROAM_ASSIGN(auto v, txn_->get(dbis_.inodes, inode_key(ino)));
  if (!v) return std::optional<Inode>{};
  ROAM_ASSIGN(Inode inode, decode_inode(ino, *v));
  return std::optional<Inode>{std::move(inode)};
}

Result<Inode> StoreTxn::inode(uint64_t ino) const {
  ROAM_ASSIGN(auto found, get_inode(ino));
  if (!found) return Status::not_found("inode " + std::to_string(ino) + " does not exist");
  return std::move(*found);
}

Result<std::optional<Dirent>> StoreTxn::get_dirent(uint64_t parent, std::string_view name) const {
  ROAM_ASSIGN(auto v, txn_->get(dbis_.dirents, dirent_key(parent, name)));
  if (!v) return std::optional<Dirent>{};
  ROAM_ASSIGN(Dirent d, decode_dirent(*v));
  return std::optional<Dirent>{d};
}

Result<std::vector<std::pair<std::string, Dirent>>> StoreTxn::list_dir(uint64_t dir, std::string_view after,
                                                                      size_t limit) const {
  std::vector<std::pair<std::string, Dirent>> out;
  ROAM_ASSIGN(auto cur, lmdb::Cursor::open(*txn_, dbis_.dirents));
  const std::string prefix = codec::be64(dir);
  ROAM_ASSIGN(auto e, cur.seek(dirent_key(dir, after)));
  while (e && out.size() < limit && e->key.substr(0, 8) == prefix) {
    std::string_view name = e->key.substr(8);
    if (!(name == after && !after.empty())) {
      ROAM_ASSIGN(Dirent d, decode_dirent(e->value));
      out.emplace_back(std::string(name), d);
    }
    ROAM_ASSIGN(e, cur.next());
  }
  return out;
}

Result<bool> StoreTxn::dir_is_empty(uint64_t dir) const {
  ROAM_ASSIGN(auto entries, list_dir(dir, "", 1));
  return entries.empty();
}

Result<std::optional<std::string>> StoreTxn::get_xattr(uint64_t ino, std::string_view name) const {
  ROAM_ASSIGN(auto v, txn_->get(dbis_.xattrs, xattr_key(ino, name)));
  if (!v) return std::optional<std::string>{};
  return std::optional<std::string>{std::string(*v)};
}

Result<std::vector<std::string>> StoreTxn::list_xattrs(uint64_t ino) const {
  std::vector<std::string> names;
  ROAM_ASSIGN(auto cur, lmdb::Cursor::open(*txn_, dbis_.xattrs));
  const std::string prefix = codec::be64(ino);
  ROAM_ASSIGN(auto e, cur.seek(prefix));
  while (e && e->key.substr(0, 8) == prefix) {
    names.emplace_back(e->key.substr(8));
    ROAM_ASSIGN(e, cur.next());
  }
  return names;
}

Result<std::vector<Extent>> StoreTxn::extents_in(uint64_t ino, uint64_t offset, uint64_t length) const {
  std::vector<Extent> out;
  if (length == 0) return out;
  const uint64_t end = offset + length < offset ? UINT64_MAX : offset + length;
  ROAM_ASSIGN(auto cur, lmdb::Cursor::open(*txn_, dbis_.extents));
  const std::string start = extent_key(ino, offset);
  // The extent that starts before `offset` may still reach into the range.
  ROAM_ASSIGN(auto at, cur.seek(start));
  std::optional<lmdb::Cursor::Entry> before;
  if (at) {
    ROAM_ASSIGN(before, cur.prev());
  } else {
    ROAM_ASSIGN(before, cur.seek_last());
  }
  if (before && before->key.size() == 16 && codec::get_be64(before->key) == ino) {
    ROAM_ASSIGN(Extent e, decode_extent(codec::get_be64(before->key, 8), before->value));
    if (e.end() > offset) out.push_back(e);
  }
  ROAM_ASSIGN(at, cur.seek(start));
  while (at && at->key.size() == 16 && codec::get_be64(at->key) == ino) {
    uint64_t file_offset = codec::get_be64(at->key, 8);
    if (file_offset >= end) break;
    ROAM_ASSIGN(Extent e, decode_extent(file_offset, at->value));
    out.push_back(e);
    ROAM_ASSIGN(at, cur.next());
  }
  return out;
}

Result<Blob> StoreTxn::blob(uint64_t id) const {
  ROAM_ASSIGN(auto v, txn_->get(dbis_.blobs, codec::be64(id)));
  if (!v) return Status::corrupt("blob " + std::to_string(id) + " is referenced but missing");
  return decode_blob(*v);
}

Result<std::optional<std::pair<uint64_t, std::string>>> StoreTxn::any_link(uint64_t ino) const {
  using Found = std::optional<std::pair<uint64_t, std::string>>;
  ROAM_ASSIGN(auto cur, lmdb::Cursor::open(*txn_, dbis_.links));
  const std::string prefix = codec::be64(ino);
  ROAM_ASSIGN(auto e, cur.seek(prefix));
  if (!e || e->key.size() < 16 || e->key.substr(0, 8) != prefix) return Found{};
  return Found{std::make_pair(codec::get_be64(e->key, 8), std::string(e->key.substr(16)))};
}

Result<std::string> StoreTxn::path_of(uint64_t ino) const {
  std::vector<std::string> parts;
  for (int depth = 0; ino != kRootIno; ++depth) {
    if (depth > 4096) return Status::corrupt("directory cycle above inode " + std::to_string(ino));
    ROAM_ASSIGN(Inode i, inode(ino));
    if (i.parent == 0) return std::string("<inode " + std::to_string(ino) + ">");
    parts.push_back(std::move(i.name));
    ino = i.parent;
  }
  if (parts.empty()) return std::string("/");
  std::string path;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) path += "/" + *it;
  return path;
}

Status StoreTxn::scan_table(MDB_dbi dbi, std::string_view prefix,
                            const std::function<Status(std::string_view, std::string_view)>& visit) const {
  ROAM_ASSIGN(auto cur, lmdb::Cursor::open(*txn_, dbi));
  ROAM_ASSIGN(auto e, prefix.empty() ? cur.first() : cur.seek(prefix));  // LMDB rejects empty keys
  while (e && e->key.substr(0, prefix.size()) == prefix) {
    ROAM_TRY(visit(e->key, e->value));
    ROAM_ASSIGN(e, cur.next());
  }
  return Status::ok();
}

// ---- WriteTxn ----

Result<uint64_t> StoreTxn::live_bytes() const {
  ROAM_ASSIGN(auto v, txn_->get(dbis_.meta, kMetaLiveBytes));
  if (!v) return uint64_t{0};
  if (v->size() != 8) return Status::corrupt("meta live_bytes is malformed");
  return codec::get_be64(*v);
}

Result<uint64_t> StoreTxn::quota_bytes() const {
  ROAM_ASSIGN(auto v, txn_->get(dbis_.meta, kMetaQuota));
  if (!v) return uint64_t{0};
  if (v->size() != 8) return Status::corrupt("meta quota_bytes is malformed");
  return codec::get_be64(*v);
}

Status WriteTxn::put_inode(const Inode& inode) {
  ROAM_ASSIGN(auto old, get_inode(inode.ino));
  live_delta_ += static_cast<int64_t>(live_bytes_of(inode)) - static_cast<int64_t>(old ? live_bytes_of(*old) : 0);
  return put(dbis_.inodes, inode_key(inode.ino), encode(inode));
}

Status WriteTxn::set_quota(uint64_t bytes) {
  ROAM_TRY(put(dbis_.meta, kMetaQuota, codec::be64(bytes)));
  new_quota_ = bytes;
  return Status::ok();
}

Status WriteTxn::apply_live_delta() {
  if (live_delta_ == 0) return Status::ok();
  ROAM_ASSIGN(uint64_t live, live_bytes());
  const uint64_t now = live_delta_ < 0 ? live - std::min(live, static_cast<uint64_t>(-live_delta_))
                                       : live + static_cast<uint64_t>(live_delta_);
  if (live_delta_ > 0 && !quota_exempt_) {
    ROAM_ASSIGN(uint64_t quota, quota_bytes());
    if (quota > 0 && now > quota)
      return Status::error(EDQUOT, "the disk's quota (" + std::to_string(quota) + " bytes) is used up");
  }
  live_delta_ = 0;
  new_live_ = now;
  return put(dbis_.meta, kMetaLiveBytes, codec::be64(now));
}

Status WriteTxn::put_dirent(uint64_t parent, std::string_view name, const Dirent& d) {
  return put(dbis_.dirents, dirent_key(parent, name), encode(d));
}

Status WriteTxn::del_dirent(uint64_t parent, std::string_view name) {
  ROAM_ASSIGN(bool found, del(dbis_.dirents, dirent_key(parent, name)));
  if (!found) return Status::not_found("no directory entry to remove");
  return Status::ok();
}

Status WriteTxn::put_link(uint64_t ino, uint64_t parent, std::string_view name) {
  return put(dbis_.links, link_key(ino, parent, name), {});
}

Status WriteTxn::del_link(uint64_t ino, uint64_t parent, std::string_view name) {
  ROAM_ASSIGN(bool found, del(dbis_.links, link_key(ino, parent, name)));
  (void)found;  // removing a name that was the primary one finds nothing here
  return Status::ok();
}

Status WriteTxn::put_xattr(uint64_t ino, std::string_view name, std::string_view value) {
  return put(dbis_.xattrs, xattr_key(ino, name), value);
}

Result<bool> WriteTxn::del_xattr(uint64_t ino, std::string_view name) {
  return del(dbis_.xattrs, xattr_key(ino, name));
}

Result<uint64_t> WriteTxn::add_blob(SegmentLocation loc, uint32_t length, uint64_t xxh3) {
  uint64_t id = counters_.next_blob++;
  ++blobs_added_;
  Blob b{loc.segment, loc.offset, length, xxh3, 0};
  ROAM_TRY(put(dbis_.blobs, codec::be64(id), encode(b), MDB_APPEND));
  return id;
}

Status WriteTxn::put_extent(uint64_t ino, const Extent& e) {
  return put(dbis_.extents, extent_key(ino, e.file_offset), encode_extent_value(e));
}

Status WriteTxn::add_extents_to_empty(uint64_t ino, const std::vector<Extent>& extents) {
  for (const Extent& e : extents) {
    // The newest inode's keys sort last, so appending is the common case.
    Status s = put(dbis_.extents, extent_key(ino, e.file_offset), encode_extent_value(e), MDB_APPEND);
    if (s.err() == EEXIST) s = put_extent(ino, e);  // not the last key: a plain insert
    ROAM_TRY(std::move(s));
    ref_blob(e.blob, 1);
  }
  return Status::ok();
}

Status WriteTxn::remap(uint64_t ino, uint64_t offset, uint64_t length, const std::optional<Extent>& replacement,
                       std::vector<Extent>& replaced) {
  const uint64_t end = offset + length;
  ROAM_ASSIGN(auto overlapping, extents_in(ino, offset, length));
  for (const Extent& e : overlapping) {
    ROAM_ASSIGN(bool found, del(dbis_.extents, extent_key(ino, e.file_offset)));
    if (!found) return Status::corrupt("extent vanished during remap");
    int64_t pieces_kept = 0;
    if (e.file_offset < offset) {  // head survives
      Extent head = e;
      head.length = static_cast<uint32_t>(offset - e.file_offset);
      ROAM_TRY(put_extent(ino, head));
      ++pieces_kept;
    }
    if (e.end() > end) {  // tail survives
      Extent tail = e;
      tail.file_offset = end;
      tail.blob_offset = static_cast<uint32_t>(e.blob_offset + (end - e.file_offset));
      tail.length = static_cast<uint32_t>(e.end() - end);
      ROAM_TRY(put_extent(ino, tail));
      ++pieces_kept;
    }
    Extent gone = e;
    gone.file_offset = std::max(e.file_offset, offset);
    gone.blob_offset = static_cast<uint32_t>(e.blob_offset + (gone.file_offset - e.file_offset));
    gone.length = static_cast<uint32_t>(std::min(e.end(), end) - gone.file_offset);
    replaced.push_back(gone);
    // `e` held one reference; head, tail and the undo piece hold one each.
    ref_blob(e.blob, pieces_kept);
  }
  if (replacement) {
    ROAM_TRY(put_extent(ino, *replacement));
    ref_blob(replacement->blob, 1);
  }
  return Status::ok();
}

Status WriteTxn::apply_ref_deltas(std::vector<uint64_t>* unreferenced) {
  for (auto [id, delta] : ref_deltas_) {
    if (delta == 0) continue;
    ROAM_ASSIGN(Blob b, blob(id));
    int64_t refs = static_cast<int64_t>(b.refs) + delta;
    if (refs < 0) return Status::corrupt("blob " + std::to_string(id) + " reference count below zero");
    b.refs = static_cast<uint64_t>(refs);
    if (refs == 0 && unreferenced) unreferenced->push_back(id);
    ROAM_TRY(put(dbis_.blobs, codec::be64(id), encode(b)));
  }
  ref_deltas_.clear();
  return Status::ok();
}

Result<std::vector<uint64_t>> WriteTxn::apply_refs_now() {
  std::vector<uint64_t> unreferenced;
  ROAM_TRY(apply_ref_deltas(&unreferenced));
  return unreferenced;
}

// ---- Store ----

ReadTxn::ReadTxn(lmdb::Txn own, const Dbis& dbis) : StoreTxn(nullptr, dbis), own_(std::make_unique<lmdb::Txn>(std::move(own))) {
  txn_ = own_.get();
}

ReadTxn::ReadTxn(ReadTxn&& o) noexcept : StoreTxn(o.txn_, o.dbis_), own_(std::move(o.own_)), lock_(std::move(o.lock_)) {}

Result<ReadTxn> Store::begin_snapshot() const {
  ROAM_ASSIGN(lmdb::Txn txn, lmdb::Txn::begin(env_, true));
  return ReadTxn(std::move(txn), dbis_);
}

Result<ReadTxn> Store::begin_read() const {
  if (read_only_) return begin_snapshot();
  std::unique_lock lock(mu_);
  if (!root_->open()) return Status::io("the store's root transaction is closed (a failed checkpoint)");
  return ReadTxn(root_->txn(), dbis_, std::move(lock));
}

Result<WriteTxn> Store::begin_write() {
  if (read_only_) return Status::error(EROFS, "the store is open read-only");
  std::unique_lock lock(mu_);
  if (!root_->open()) return Status::io("the store's root transaction is closed (a failed checkpoint)");
  return WriteTxn(root_->txn(), *this, std::move(lock));
}

void Store::trim_resident_memory() {
  if (map_addr_) ::madvise(map_addr_, map_len_, MADV_DONTNEED);
}

}  // namespace roam
