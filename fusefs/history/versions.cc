#include "fusefs/history/versions.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <set>

#include "fusefs/oplog/past_view.h"
#include "fusefs/oplog/oplog.h"

namespace roam {

namespace {

// Every inode that had the name `name` in directory `dir`, from the
// directory's history (records that changed its entries hold the before-image
// of the entry, and name the inode they acted on).
Status inodes_named_in(const StoreTxn& txn, uint64_t dir, const std::string& path, const std::string& name,
                       std::set<uint64_t>& out) {
  oplog::Filter f;
  f.ino = dir;
  return oplog::scan(txn, f, [&](const OpRecord& r) {
    for (const auto& d : r.dirents_before)
      if (d.parent == dir && d.name == name && d.entry) out.insert(d.entry->ino);
    if (r.path == path && r.ino) out.insert(r.ino);
    if (r.path2 == path && r.ino) out.insert(r.ino);  // renamed or linked onto the path
    return true;
  });
}

}  // namespace

Result<std::set<uint64_t>> inodes_ever_at(const StoreTxn& txn, const std::string& path) {
  std::set<uint64_t> inos;
  if (path == "/") return std::set<uint64_t>{kRootIno};
  PastView now(txn, PastView::kNow);
  ROAM_ASSIGN(auto current, now.resolve(path));
  if (current) inos.insert(*current);
  // Every directory that has been at the parent path (it may have been
  // replaced), and in each, every file that had the name.
  auto [dir, name] = split_path(path);
  ROAM_ASSIGN(auto dirs, inodes_ever_at(txn, dir));
  for (uint64_t d : dirs) {
    ROAM_ASSIGN(auto inode, txn.get_inode(d));
    if (inode && S_ISDIR(inode->mode)) ROAM_TRY(inodes_named_in(txn, d, path, name, inos));
  }
  return inos;
}

Status scan_path(const StoreTxn& txn, const oplog::Filter& filter, const std::function<bool(const OpRecord&)>& visit) {
  ROAM_ASSIGN(auto inos, inodes_ever_at(txn, filter.path.value_or("/")));
  bool only_files = !inos.empty();
  for (uint64_t ino : inos) {
    ROAM_ASSIGN(auto inode, txn.get_inode(ino));
    if (!inode || S_ISDIR(inode->mode)) only_files = false;
  }
  if (!only_files) return oplog::scan(txn, filter, visit);
  std::map<uint64_t, OpRecord> records;  // by seq: one record may name several of the inodes
  for (uint64_t ino : inos) {
    oplog::Filter f = filter;
    f.ino = ino;
    f.limit = SIZE_MAX;
    ROAM_TRY(oplog::scan(txn, f, [&](const OpRecord& r) {
      records.emplace(r.seq, r);
      return true;
    }));
  }
  size_t seen = 0;
  for (const auto& [seq, r] : records)
    if (!visit(r) || ++seen >= filter.limit) break;
  return Status::ok();
}

Result<std::vector<Version>> versions_of(const StoreTxn& txn, const std::string& path) {
  ROAM_ASSIGN(auto inos, inodes_ever_at(txn, path));
  if (inos.empty()) return Status::not_found("nothing was ever at " + path + " (within the retained history)");
  std::vector<Version> out;
  for (uint64_t ino : inos) {
    std::vector<Version> mine;
    oplog::Filter f;
    f.ino = ino;
    ROAM_TRY(oplog::scan(txn, f, [&](const OpRecord& r) {
      mine.push_back({r, ino, std::nullopt});
      return true;
    }));
    // The file after change i is its before-image in the next change that
    // touched its inode record, or as it is now.
    ROAM_ASSIGN(std::optional<Inode> after, txn.get_inode(ino));
    for (auto it = mine.rbegin(); it != mine.rend(); ++it) {
      it->after = after;
      for (const InodeBefore& b : it->record.inodes_before)
        if (b.ino == ino) {
          ROAM_ASSIGN(after, b.before(after));
        }
    }
    out.insert(out.end(), std::make_move_iterator(mine.begin()), std::make_move_iterator(mine.end()));
  }
  std::sort(out.begin(), out.end(), [](const Version& a, const Version& b) { return a.record.seq < b.record.seq; });
  return out;
}

}  // namespace roam
