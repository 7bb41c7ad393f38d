#include "fusefs/oplog/past_view.h"

#include <sys/stat.h>

#include <algorithm>

#include "fusefs/oplog/oplog.h"

namespace roam {

namespace {

// Disjoint half-open byte ranges, merged as they are added.
class RangeSet {
 public:
  // The parts of [a, b) not in the set, in order.
  std::vector<std::pair<uint64_t, uint64_t>> gaps(uint64_t a, uint64_t b) const {
    std::vector<std::pair<uint64_t, uint64_t>> out;
    uint64_t pos = a;
    auto it = ranges_.upper_bound(a);
    if (it != ranges_.begin()) --it;
    for (; it != ranges_.end() && it->first < b && pos < b; ++it) {
      if (it->second <= pos) continue;
      if (it->first > pos) out.emplace_back(pos, it->first);
      pos = std::max(pos, it->second);
    }
    if (pos < b) out.emplace_back(pos, b);
    return out;
  }
  void add(uint64_t a, uint64_t b) {
    for (auto [ga, gb] : gaps(a, b)) ranges_[ga] = gb;
  }

 private:
  std::map<uint64_t, uint64_t> ranges_;  // start -> end
};

// The part of `e` inside [a, b), if any.
std::optional<Extent> clip(const Extent& e, uint64_t a, uint64_t b) {
  const uint64_t lo = std::max(e.file_offset, a), hi = std::min(e.end(), b);
  if (lo >= hi) return std::nullopt;
  Extent c = e;
  c.blob_offset = static_cast<uint32_t>(e.blob_offset + (lo - e.file_offset));
  c.file_offset = lo;
  c.length = static_cast<uint32_t>(hi - lo);
  return c;
}

void append_clipped(std::vector<Extent>& out, const std::vector<Extent>& from, uint64_t a, uint64_t b) {
  for (const Extent& e : from)
    if (auto c = clip(e, a, b)) out.push_back(*c);
}

}  // namespace

std::pair<std::string, std::string> split_path(std::string_view path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string_view::npos) return {"/", std::string(path)};
  std::string dir(path.substr(0, slash));
  return {dir.empty() ? "/" : dir, std::string(path.substr(slash + 1))};
}

std::string join_path(std::string_view dir, std::string_view name) {
  std::string p(dir);
  if (p.empty() || p.back() != '/') p += '/';
  p.append(name);
  return p;
}

Result<const PastView::Overrides*> PastView::overrides(uint64_t ino) {
  if (auto it = cache_.find(ino); it != cache_.end()) return it->second.get();
  auto ov = std::make_unique<Overrides>();
  if (seq_ == kNow) return cache_.emplace(ino, std::move(ov)).first->second.get();
  ROAM_ASSIGN(oplog::InodeRecords seqs, oplog::InodeRecords::open(txn_, ino, seq_ + 1));
  std::vector<InodeBefore> later_images;  // ino's before-images in the records after seq_, in order
  for (;;) {
    ROAM_ASSIGN(auto seq, seqs.next());
    if (!seq) break;
    ROAM_ASSIGN(auto rec, records_.get(*seq));
    if (!rec) return Status::corrupt("log index names missing record " + std::to_string(*seq));
    for (auto& b : rec->inodes_before)
      if (b.ino == ino) later_images.push_back(std::move(b));
    for (auto& d : rec->dirents_before)
      if (d.parent == ino) ov->dirents.try_emplace(d.name, d.entry);
    for (auto& x : rec->xattrs_before)
      if (x.ino == ino) ov->xattrs.try_emplace(x.name, std::move(x.value));
    for (auto& d : rec->data_before)
      if (d.ino == ino) ov->data.push_back(std::move(d));
  }
  if (!later_images.empty()) {
    // Each image holds what its operation changed; undo them newest first,
    // starting from the inode as it is now.
    ROAM_ASSIGN(std::optional<Inode> state, txn_.get_inode(ino));
    for (auto it = later_images.rbegin(); it != later_images.rend(); ++it) {
      ROAM_ASSIGN(state, it->before(state));
    }
    ov->inode_changed = true;
    ov->inode = std::move(state);
  }
  return cache_.emplace(ino, std::move(ov)).first->second.get();
}

Result<std::optional<Inode>> PastView::inode(uint64_t ino) {
  if (seq_ == kNow) return txn_.get_inode(ino);
  ROAM_ASSIGN(const Overrides* ov, overrides(ino));
  if (ov->inode_changed) return ov->inode;
  return txn_.get_inode(ino);
}

Result<Inode> PastView::existing_inode(uint64_t ino) {
  if (seq_ == kNow) return txn_.inode(ino);
  ROAM_ASSIGN(auto i, inode(ino));
  if (!i) return Status::not_found("inode " + std::to_string(ino) + " did not exist at that moment");
  return std::move(*i);
}

Result<std::optional<Dirent>> PastView::dirent(uint64_t parent, std::string_view name) {
  if (seq_ == kNow) return txn_.get_dirent(parent, name);
  ROAM_ASSIGN(const Overrides* ov, overrides(parent));
  if (auto it = ov->dirents.find(name); it != ov->dirents.end()) return it->second;
  return txn_.get_dirent(parent, name);
}

Result<std::vector<std::pair<std::string, Dirent>>> PastView::list_dir(uint64_t dir, std::string_view after,
                                                                      size_t limit) {
  if (seq_ == kNow) return txn_.list_dir(dir, after, limit);
  ROAM_ASSIGN(const Overrides* ov, overrides(dir));
  ROAM_ASSIGN(auto current, txn_.list_dir(dir, "", SIZE_MAX));
  std::map<std::string, Dirent, std::less<>> entries(std::make_move_iterator(current.begin()),
                                                     std::make_move_iterator(current.end()));
  for (const auto& [name, before] : ov->dirents) {
    if (before) entries[name] = *before;
    else entries.erase(name);
  }
  std::vector<std::pair<std::string, Dirent>> out;
  for (auto it = after.empty() ? entries.begin() : entries.upper_bound(after);
       it != entries.end() && out.size() < limit; ++it)
    out.emplace_back(it->first, it->second);
  return out;
}

Result<std::optional<std::string>> PastView::xattr(uint64_t ino, std::string_view name) {
  if (seq_ == kNow) return txn_.get_xattr(ino, name);
  ROAM_ASSIGN(const Overrides* ov, overrides(ino));
  if (auto it = ov->xattrs.find(name); it != ov->xattrs.end()) return it->second;
  return txn_.get_xattr(ino, name);
}

Result<std::map<std::string, std::string>> PastView::xattrs(uint64_t ino) {
  ROAM_ASSIGN(const Overrides* ov, overrides(ino));
  std::map<std::string, std::string> out;
  ROAM_ASSIGN(auto names, txn_.list_xattrs(ino));
  for (const auto& n : names) {
    ROAM_ASSIGN(auto v, txn_.get_xattr(ino, n));
    if (v) out[n] = std::move(*v);
  }
  for (const auto& [name, before] : ov->xattrs) {
    if (before) out[name] = *before;
    else out.erase(name);
  }
  return out;
}

Result<std::vector<Extent>> PastView::extents_in(uint64_t ino, uint64_t offset, uint64_t length) {
  if (seq_ == kNow) return txn_.extents_in(ino, offset, length);
  ROAM_ASSIGN(auto past, inode(ino));
  std::vector<Extent> out;
  if (!past || past->size == 0 || length == 0) return out;
  const uint64_t lo = offset, hi = std::min(past->size, length > UINT64_MAX - offset ? UINT64_MAX : offset + length);
  if (lo >= hi) return out;
  ROAM_ASSIGN(const Overrides* ov, overrides(ino));
  // The first later record to remap a byte holds what mapped it at seq.
  RangeSet resolved;
  for (const DataBefore& d : ov->data) {
    const uint64_t a = std::max(d.offset, lo), b = std::min(d.offset + d.length, hi);
    if (a < b) {
      for (auto [ga, gb] : resolved.gaps(a, b)) append_clipped(out, d.extents, ga, gb);
    }
    resolved.add(d.offset, d.offset + d.length);
  }
  // Bytes no later record remapped are as they are now.
  for (auto [a, b] : resolved.gaps(lo, hi)) {
    ROAM_ASSIGN(auto now, txn_.extents_in(ino, a, b - a));
    append_clipped(out, now, a, b);
  }
  std::sort(out.begin(), out.end(), [](const Extent& x, const Extent& y) { return x.file_offset < y.file_offset; });
  return out;
}

Result<std::optional<uint64_t>> PastView::resolve(std::string_view path) {
  uint64_t ino = kRootIno;
  size_t pos = 0;
  while (pos < path.size()) {
    if (path[pos] == '/') {
      ++pos;
      continue;
    }
    const size_t end = std::min(path.find('/', pos), path.size());
    const std::string_view name = path.substr(pos, end - pos);
    pos = end;
    ROAM_ASSIGN(auto dir, inode(ino));
    if (!dir) return std::optional<uint64_t>{};
    if (!S_ISDIR(dir->mode)) return Status::error(ENOTDIR, "a component of the path was not a directory");
    ROAM_ASSIGN(auto d, dirent(ino, name));
    if (!d) return std::optional<uint64_t>{};
    ino = d->ino;
  }
  return std::optional<uint64_t>{ino};
}

}  // namespace roam
