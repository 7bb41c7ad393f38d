#include "fusefs/fuse/history_dir.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/timefmt.h"
#include "fusefs/engine/read_extents.h"
#include "fusefs/oplog/oplog.h"
#include "fusefs/oplog/past_view.h"
#include "fusefs/history/moment.h"

namespace roam {

namespace {

using time_travel::kDirIno;

// How long the kernel may keep a relative name in .history (-2h, now): its
// moment moves on, but looking it up again for every path through it (ls -l
// walks one per file and xattr) would cost a log search each time.
constexpr double kRelativeNameSeconds = 1;
// .history itself: r-x for everyone; what is inside keeps its past modes.
constexpr uint32_t kDirMode = S_IFDIR | 0555;
// Past files whose extent maps are kept (then all are dropped and the cache
// starts again): a few files being copied out of .history at once.
constexpr size_t kMaxPastFiles = 64;
// See fill_readdir in ops.cc: a readdirplus entry takes over this many bytes.
constexpr size_t kMinDirentPlusBytes = 128;

}  // namespace

// A directory listing taken at opendir (a view never changes; .history's
// moments are those of that instant). Freed by releasedir, which the kernel
// may send as soon as a readdir reply is out: no handler touches it after
// replying.
struct HistoryDir::Listing {
  struct Entry {
    std::string name;
    uint64_t ino = 0;       // as the kernel numbers it
    uint32_t type = 0;      // S_IFMT bits
    uint64_t past_ino = 0;  // 0: readdirplus gives no attributes ("." and "..", moments)
  };
  std::vector<Entry> entries;
  View view;  // index 0: the listing of .history
};

Result<HistoryDir::View> HistoryDir::view_of(uint64_t ino) const {
  const time_travel::PastIno p = time_travel::decode_ino(ino);
  ROAM_ASSIGN(uint64_t seq, views_.seq_of(p.view));
  return View{p.view, seq, p.ino};
}

Status HistoryDir::still_held(uint64_t seq) {
  ROAM_ASSIGN(ReadTxn txn, live_.store().begin_read());
  if (Status held = check_still_held(txn, seq); !held) return Status::error(ESTALE, held.message());
  return Status::ok();
}

template <class T, class Read>
Result<T> HistoryDir::in_view(uint64_t seq, Read&& read) {
  Fs past(live_.store(), seq);
  Result<T> r = read(past);
  ROAM_TRY(still_held(seq));
  return r;
}

Result<std::shared_ptr<const HistoryDir::PastFile>> HistoryDir::past_file(const StoreTxn& txn, const View& v) {
  const auto key = std::make_pair(v.seq, v.ino);
  std::shared_ptr<const PastFile> cached;
  {
    std::lock_guard lock(files_mu_);
    if (auto it = files_.find(key); it != files_.end()) cached = it->second;
  }
  if (cached) {
    ROAM_ASSIGN(auto later, oplog::InodeRecords::open(txn, v.ino, cached->newest_seq + 1));
    ROAM_ASSIGN(auto changed, later.next());
    if (!changed) return cached;
  }
  auto file = std::make_shared<PastFile>();
  PastView past(txn, v.seq);
  ROAM_ASSIGN(Inode inode, past.existing_inode(v.ino));
  if (S_ISDIR(inode.mode)) return Status::error(EISDIR, "is a directory");
  file->size = inode.size;
  ROAM_ASSIGN(file->extents, past.extents(v.ino));
  file->newest_seq = v.seq;
  ROAM_ASSIGN(auto records, oplog::InodeRecords::open(txn, v.ino, v.seq + 1));
  for (;;) {
    ROAM_ASSIGN(auto seq, records.next());
    if (!seq) break;
    file->newest_seq = *seq;
  }
  std::lock_guard lock(files_mu_);
  if (files_.size() >= kMaxPastFiles) files_.clear();
  files_[key] = file;
  return std::shared_ptr<const PastFile>(std::move(file));
}

Result<size_t> HistoryDir::read_past(const View& v, uint64_t offset, size_t size, char* buf) {
  for (int attempt = 0;; ++attempt) {
    std::vector<ReadPiece> pieces;
    size_t n = 0;
    {
      ROAM_ASSIGN(ReadTxn txn, live_.store().begin_read());
      ROAM_ASSIGN(auto file, past_file(txn, v));
      if (offset >= file->size) return size_t{0};
      n = static_cast<size_t>(std::min<uint64_t>(size, file->size - offset));
      const auto& all = file->extents;
      auto it = std::partition_point(all.begin(), all.end(), [&](const Extent& e) { return e.end() <= offset; });
      std::vector<Extent> range;
      for (; it != all.end() && it->file_offset < offset + n; ++it) range.push_back(*it);
      ROAM_ASSIGN(pieces, read_pieces(txn, v.ino, range));
    }
    // As Fs::read: compaction may have moved a blob since; look it up again.
    Status s = read_from_pieces(live_.store().segments(), v.ino, pieces, offset, n, buf);
    if (s) return n;
    if (s.err() != ESTALE || attempt > 0) return s;
  }
}

Result<Inode> HistoryDir::renumbered(uint32_t index, Inode i) const {
  const bool root = i.ino == kRootIno;
  ROAM_ASSIGN(i.ino, time_travel::encode_ino(index, i.ino));
  if (root) {
    i.parent = kDirIno;
  } else if (i.parent != 0) {
    ROAM_ASSIGN(i.parent, time_travel::encode_ino(index, i.parent));
  }
  return i;
}

Result<Inode> HistoryDir::past_inode(const View& v) {
  ROAM_ASSIGN(Inode i, in_view<Inode>(v.seq, [&](Fs& past) { return past.getattr(v.ino); }));
  return renumbered(v.index, std::move(i));
}

// The live root's owner and times, read-only and searchable by everyone. The
// kernel keeps them as long as a view's: with default_permissions it checks
// them at every path walk through .history, and asking each time made ls -l
// in a view send three more requests per file. So a chown of the root shows
// on .history only once the kernel forgets it (a day, or a remount).
Result<Inode> HistoryDir::dir_inode() {
  ROAM_ASSIGN(Inode i, live_.getattr(kRootIno));
  i.ino = kDirIno;
  i.parent = kRootIno;
  i.mode = kDirMode;
  i.nlink = 2;
  i.size = 0;
  return i;
}

void HistoryDir::reply_entry(fuse_req_t req, const Inode& i, double entry_timeout) {
  fuse_entry_param e{};
  e.ino = i.ino;
  e.generation = 1;
  e.attr = to_stat(i);
  e.attr_timeout = view_timeout_;
  e.entry_timeout = entry_timeout;
  fuse_reply_entry(req, &e);
}

void HistoryDir::lookup_dir(fuse_req_t req) {
  auto dir = dir_inode();
  if (!dir) return reply_status(req, dir.status());
  reply_entry(req, *dir, view_timeout_);
}

// The moment a name in .history means, as its view's root directory.
void HistoryDir::lookup(fuse_req_t req, uint64_t parent, const char* name) {
  if (parent == kDirIno) {
    auto root = [&]() -> Result<Inode> {
      ROAM_ASSIGN(ReadTxn txn, live_.store().begin_read());
      ROAM_ASSIGN(uint64_t seq, time_travel::moment_named(txn, name, wall_clock_ns()));
      ROAM_ASSIGN(uint32_t index, views_.index_of(seq));
      return past_inode(View{index, seq, kRootIno});
    }();
    // No TIME, or a moment the disk does not hold: no such directory.
    if (!root && (root.status().err() == EINVAL || root.status().err() == ERANGE))
      return static_cast<void>(fuse_reply_err(req, ENOENT));
    if (!root) return reply_status(req, root.status());
    // A fixed moment's view never changes; a relative name means another
    // moment a second later.
    return reply_entry(req, *root, time_travel::names_fixed_moment(name) ? view_timeout_ : kRelativeNameSeconds);
  }
  auto v = view_of(parent);
  if (!v) return reply_status(req, v.status());
  auto found = in_view<Inode>(v->seq, [&](Fs& past) { return past.lookup(v->ino, name); });
  if (!found && found.status().err() == ENOENT) {
    fuse_entry_param e{};  // a view never changes: the kernel may keep the absence
    e.entry_timeout = view_timeout_;
    return static_cast<void>(fuse_reply_entry(req, &e));
  }
  if (!found) return reply_status(req, found.status());
  auto i = renumbered(v->index, std::move(*found));
  if (!i) return reply_status(req, i.status());
  reply_entry(req, *i, view_timeout_);
}

void HistoryDir::getattr(fuse_req_t req, uint64_t ino) {
  auto i = [&]() -> Result<Inode> {
    if (ino == kDirIno) return dir_inode();
    ROAM_ASSIGN(View v, view_of(ino));
    return past_inode(v);
  }();
  if (!i) return reply_status(req, i.status());
  struct stat st = to_stat(*i);
  fuse_reply_attr(req, &st, view_timeout_);
}

void HistoryDir::readlink(fuse_req_t req, uint64_t ino) {
  auto v = view_of(ino);
  if (!v) return reply_status(req, v.status());
  auto target = in_view<std::string>(v->seq, [&](Fs& past) { return past.readlink(v->ino); });
  if (!target) return reply_status(req, target.status());
  fuse_reply_readlink(req, target->c_str());
}

void HistoryDir::open(fuse_req_t req, uint64_t ino, fuse_file_info* fi) {
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
    return static_cast<void>(fuse_reply_err(req, EROFS));
  if (ino == kDirIno) return static_cast<void>(fuse_reply_err(req, EISDIR));
  auto v = view_of(ino);
  if (!v) return reply_status(req, v.status());
  auto i = past_inode(*v);
  if (!i) return reply_status(req, i.status());
  if (S_ISDIR(i->mode)) return static_cast<void>(fuse_reply_err(req, EISDIR));
  fi->fh = 0;          // reads need no handle: the view is named by the inode number
  fi->keep_cache = 1;  // a view never changes
  fuse_reply_open(req, fi);
}

void HistoryDir::read(fuse_req_t req, uint64_t ino, size_t size, off_t off) {
  auto v = view_of(ino);
  if (!v) return reply_status(req, v.status());
  std::unique_ptr<char[]> buf(new char[size]);
  auto n = read_past(*v, static_cast<uint64_t>(off), size, buf.get());
  if (Status held = n ? still_held(v->seq) : Status::ok(); !held) n = Result<size_t>(held);
  if (!n) return reply_status(req, n.status());
  fuse_reply_buf(req, buf.get(), *n);
}

Result<std::unique_ptr<HistoryDir::Listing>> HistoryDir::list_moments() {
  ROAM_ASSIGN(ReadTxn txn, live_.store().begin_read());
  ROAM_ASSIGN(auto moments, time_travel::listed_moments(txn, wall_clock_ns()));
  auto listing = std::make_unique<Listing>();
  listing->entries.push_back({".", kDirIno, S_IFDIR, 0});
  listing->entries.push_back({"..", kRootIno, S_IFDIR, 0});
  for (auto& [name, seq] : moments) {
    ROAM_ASSIGN(uint32_t index, views_.index_of(seq));
    ROAM_ASSIGN(uint64_t root, time_travel::encode_ino(index, kRootIno));
    listing->entries.push_back({std::move(name), root, S_IFDIR, 0});
  }
  return listing;
}

Result<std::unique_ptr<HistoryDir::Listing>> HistoryDir::list_view_dir(const View& v) {
  ROAM_ASSIGN(Inode self, past_inode(v));
  if (!S_ISDIR(self.mode)) return Status::error(ENOTDIR, "not a directory");
  using Entries = std::vector<std::pair<std::string, Dirent>>;
  ROAM_ASSIGN(Entries entries,
              in_view<Entries>(v.seq, [&](Fs& past) { return past.readdir(v.ino, "", SIZE_MAX); }));
  auto listing = std::make_unique<Listing>();
  listing->view = v;
  listing->entries.push_back({".", self.ino, S_IFDIR, 0});
  listing->entries.push_back({"..", self.parent, S_IFDIR, 0});
  for (auto& [name, d] : entries) {
    ROAM_ASSIGN(uint64_t ino, time_travel::encode_ino(v.index, d.ino));
    listing->entries.push_back({std::move(name), ino, d.type, d.ino});
  }
  return listing;
}

void HistoryDir::opendir(fuse_req_t req, uint64_t ino, fuse_file_info* fi) {
  auto listing = [&]() -> Result<std::unique_ptr<Listing>> {
    if (ino == kDirIno) return list_moments();
    ROAM_ASSIGN(View v, view_of(ino));
    return list_view_dir(v);
  }();
  if (!listing) return reply_status(req, listing.status());
  fi->fh = reinterpret_cast<uint64_t>(listing->release());
  fi->cache_readdir = 0;
  if (fuse_reply_open(req, fi) == -ENOENT) delete reinterpret_cast<Listing*>(fi->fh);  // the opener was interrupted
}

// Fills `buf` from offset `off` (an index into the listing plus one); returns
// the bytes used. Does not reply (see Listing).
Result<size_t> HistoryDir::fill(fuse_req_t req, Listing& listing, std::vector<char>& buf, off_t off, bool plus) {
  const auto& entries = listing.entries;
  const size_t size = buf.size();
  const size_t first = std::min(static_cast<size_t>(off), entries.size());
  const size_t last = plus ? std::min(entries.size(), first + size / kMinDirentPlusBytes + 1) : entries.size();
  std::vector<std::optional<Inode>> inodes(last - first);
  if (plus && listing.view.index != 0) {
    std::vector<uint64_t> inos;
    for (size_t i = first; i < last; ++i) inos.push_back(entries[i].past_ino);
    ROAM_ASSIGN(inodes, in_view<std::vector<std::optional<Inode>>>(listing.view.seq,
                                                                   [&](Fs& past) { return past.getattrs(inos); }));
  }
  size_t used = 0;
  for (size_t i = first; i < last; ++i) {
    const auto& entry = entries[i];
    const off_t next = static_cast<off_t>(i + 1);
    size_t n;
    if (plus) {
      fuse_entry_param e{};  // ino 0: the kernel makes no dentry, only lists the name
      e.attr.st_ino = entry.ino;
      e.attr.st_mode = entry.type;
      if (entry.past_ino != 0 && inodes[i - first]) {
        ROAM_ASSIGN(Inode inode, renumbered(listing.view.index, *inodes[i - first]));
        e.ino = inode.ino;
        e.generation = 1;
        e.attr = to_stat(inode);
        e.attr_timeout = e.entry_timeout = view_timeout_;
      }
      n = fuse_add_direntry_plus(req, buf.data() + used, size - used, entry.name.c_str(), &e, next);
    } else {
      struct stat st {};
      st.st_ino = entry.ino;
      st.st_mode = entry.type;
      n = fuse_add_direntry(req, buf.data() + used, size - used, entry.name.c_str(), &st, next);
    }
    if (n > size - used) break;
    used += n;
  }
  return used;
}

void HistoryDir::readdir(fuse_req_t req, size_t size, off_t off, fuse_file_info* fi, bool plus) {
  std::vector<char> buf(size);
  auto used = fill(req, *reinterpret_cast<Listing*>(fi->fh), buf, off, plus);
  if (!used) return reply_status(req, used.status());
  fuse_reply_buf(req, buf.data(), *used);
}

void HistoryDir::releasedir(fuse_req_t req, fuse_file_info* fi) {
  delete reinterpret_cast<Listing*>(fi->fh);
  fuse_reply_err(req, 0);
}

void HistoryDir::getxattr(fuse_req_t req, uint64_t ino, const char* name, size_t size) {
  if (ino == kDirIno) return static_cast<void>(fuse_reply_err(req, ENODATA));
  auto v = view_of(ino);
  if (!v) return reply_status(req, v.status());
  auto value = in_view<std::string>(v->seq, [&](Fs& past) { return past.getxattr(v->ino, name); });
  if (!value) return reply_status(req, value.status());
  reply_xattr_bytes(req, *value, size);
}

void HistoryDir::listxattr(fuse_req_t req, uint64_t ino, size_t size) {
  if (ino == kDirIno) return reply_xattr_bytes(req, "", size);
  auto v = view_of(ino);
  if (!v) return reply_status(req, v.status());
  auto names = in_view<std::vector<std::string>>(v->seq, [&](Fs& past) { return past.listxattr(v->ino); });
  if (!names) return reply_status(req, names.status());
  std::string list;
  for (const auto& n : *names) list.append(n).push_back('\0');
  reply_xattr_bytes(req, list, size);
}

}  // namespace roam
