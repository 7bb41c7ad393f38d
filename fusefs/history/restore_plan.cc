#include "fusefs/history/restore_plan.h"

#include <sys/stat.h>

#include <algorithm>
#include <deque>

namespace roam {

namespace {

// The extent of `map` covering byte `pos`, if any (`i` walks forward).
const Extent* covering(const std::vector<Extent>& map, size_t& i, uint64_t pos) {
  while (i < map.size() && map[i].end() <= pos) ++i;
  return i < map.size() && map[i].file_offset <= pos ? &map[i] : nullptr;
}

}  // namespace

Ranges differing_ranges(const std::vector<Extent>& a, const std::vector<Extent>& b) {
  std::vector<uint64_t> cuts;
  for (const auto* map : {&a, &b})
    for (const Extent& e : *map) cuts.push_back(e.file_offset), cuts.push_back(e.end());
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  Ranges out;
  size_t ia = 0, ib = 0;
  for (size_t k = 0; k + 1 < cuts.size(); ++k) {
    const uint64_t x = cuts[k], y = cuts[k + 1];
    const Extent* ea = covering(a, ia, x);
    const Extent* eb = covering(b, ib, x);
    const bool same = (!ea && !eb) || (ea && eb && ea->blob == eb->blob &&
                                       ea->blob_offset + (x - ea->file_offset) == eb->blob_offset + (x - eb->file_offset));
    if (same) continue;
    if (!out.empty() && out.back().second == x) out.back().second = y;
    else out.emplace_back(x, y);
  }
  return out;
}

namespace {

std::string rel_join(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

// Reads the tree rooted at past inode `root`, parents before children.
Status read_past_tree(PastView& past, uint64_t root, RestorePlan& plan) {
  plan.past_root = root;
  std::deque<uint64_t> queue{root};
  ROAM_ASSIGN(auto root_inode, past.inode(root));
  if (!root_inode) return Status::corrupt("past directory entry names missing inode " + std::to_string(root));
  plan.past[root].inode = std::move(*root_inode);
  plan.past[root].names.emplace_back(0, "");
  while (!queue.empty()) {
    const uint64_t ino = queue.front();
    queue.pop_front();
    plan.past_order.push_back(ino);
    PastNode& node = plan.past[ino];
    ROAM_ASSIGN(node.xattrs, past.xattrs(ino));
    if (S_ISREG(node.inode.mode)) {
      ROAM_ASSIGN(node.extents, past.extents(ino));
    }
    if (!S_ISDIR(node.inode.mode)) continue;
    ROAM_ASSIGN(auto entries, past.list_dir(ino));
    const std::string dir_rel = node.rel;
    for (auto& [name, d] : entries) {
      plan.past[ino].children.emplace_back(name, d.ino);
      auto [it, fresh] = plan.past.try_emplace(d.ino);
      PastNode& child = it->second;
      child.names.emplace_back(ino, name);
      if (!fresh) {
        if (S_ISDIR(child.inode.mode) || d.ino == root)
          return Status::corrupt("directory " + std::to_string(d.ino) + " has two names in the past");
        continue;
      }
      ROAM_ASSIGN(auto child_inode, past.inode(d.ino));
      if (!child_inode) return Status::corrupt("past directory entry names missing inode " + std::to_string(d.ino));
      child.inode = std::move(*child_inode);
      child.rel = rel_join(dir_rel, name);
      if (S_ISDIR(child.inode.mode)) ++plan.past[ino].subdirs;
      queue.push_back(d.ino);
    }
  }
  return Status::ok();
}

// Reads the tree now at the restored path, counting each inode's names in it.
Status read_live_tree(const StoreTxn& txn, uint64_t top, RestorePlan& plan) {
  std::deque<uint64_t> queue;
  auto visit = [&](uint64_t ino, uint64_t parent, const std::string& name, const std::string& rel) -> Status {
    auto [it, fresh] = plan.live.try_emplace(ino);
    it->second.names.emplace_back(parent, name);
    if (!fresh) return Status::ok();
    ROAM_ASSIGN(it->second.inode, txn.inode(ino));
    it->second.rel = rel;
    if (S_ISDIR(it->second.inode.mode)) queue.push_back(ino);
    return Status::ok();
  };
  ROAM_TRY(visit(top, plan.parent, plan.name, ""));
  while (!queue.empty()) {
    const uint64_t dir = queue.front();
    queue.pop_front();
    ROAM_ASSIGN(auto entries, txn.list_dir(dir, "", SIZE_MAX));
    const std::string dir_rel = plan.live[dir].rel;
    for (const auto& [name, d] : entries) ROAM_TRY(visit(d.ino, dir, name, rel_join(dir_rel, name)));
    plan.live[dir].entries = std::move(entries);
  }
  return Status::ok();
}

// With the writeback cache, the kernel keeps its own size and mtime for a
// regular file it has in memory and ignores the server's. So a regular file
// whose data, size or mtime must go back is restored as a new inode (the
// kernel then sees a new file under the old names; a process that has the
// old one open keeps reading it, as after a rename over it).
Result<bool> attributes_can_change(const StoreTxn& txn, const PastNode& past, const Inode& now) {
  if (!S_ISREG(now.mode)) return true;
  if (now.size != past.inode.size || !(now.mtime == past.inode.mtime)) return false;
  ROAM_ASSIGN(auto extents, txn.extents_in(now.ino, 0, UINT64_MAX));
  return differing_ranges(extents, past.extents).empty();
}

// An inode is restored under its own number when every name it has now is
// inside the replaced tree (so restoring it changes nothing outside), or when
// it has no name at all — unless the kernel could not follow the change
// (above). Everything else is restored as a copy.
Status choose_in_place(const StoreTxn& txn, RestorePlan& plan) {
  for (const auto& [ino, node] : plan.past) {
    if (auto it = plan.live.find(ino); it != plan.live.end()) {
      const LiveNode& l = it->second;
      const bool all_names_inside = S_ISDIR(l.inode.mode) || l.names.size() == l.inode.nlink;
      ROAM_ASSIGN(bool kernel_can_follow, attributes_can_change(txn, node, l.inode));
      if (all_names_inside && kernel_can_follow) plan.in_place.insert(ino);
      continue;
    }
    ROAM_ASSIGN(auto now, txn.get_inode(ino));
    if (!now) {
      plan.in_place.insert(ino);
      continue;
    }
    ROAM_ASSIGN(bool kernel_can_follow, attributes_can_change(txn, node, *now));
    if (now->nlink == 0 && kernel_can_follow) plan.in_place.insert(ino);
  }
  return Status::ok();
}

}  // namespace

Result<RestorePlan> plan_restore(const StoreTxn& txn, PastView& past, const RestoreRequest& req) {
  RestorePlan plan;
  ROAM_ASSIGN(auto past_root, past.resolve(req.path));
  // A path that did not exist then is restored by removing it (kept in
  // history) — that is how a restore that brought a path back is undone.
  if (!past_root && req.to) return Status::not_found(req.path + " did not exist at that moment");
  if (past_root) ROAM_TRY(read_past_tree(past, *past_root, plan));

  plan.target_path = req.to.value_or(req.path);
  if (plan.target_path == "/") {
    if (*past_root != kRootIno) return Status::invalid("only the disk's root can be restored to /");
    plan.target_now = Dirent{kRootIno, S_IFDIR};
    ROAM_TRY(read_live_tree(txn, kRootIno, plan));
    ROAM_TRY(choose_in_place(txn, plan));
    return plan;
  }
  auto [dir, name] = split_path(plan.target_path);
  plan.name = name;
  // The directory that will hold the restored path must exist now.
  uint64_t parent = kRootIno;
  {
    PastView now(txn, PastView::kNow);
    ROAM_ASSIGN(auto p, now.resolve(dir));
    if (!p) return Status::not_found(dir + " does not exist now; restore it first, or use --to");
    ROAM_ASSIGN(Inode d, txn.inode(*p));
    if (!S_ISDIR(d.mode) || d.nlink == 0) return Status::error(ENOTDIR, dir + " is not a directory now");
    parent = *p;
  }
  plan.parent = parent;
  ROAM_ASSIGN(plan.target_now, txn.get_dirent(parent, name));
  if (req.to) {
    if (plan.target_now) return Status::error(EEXIST, *req.to + " already exists; choose another --to path");
    return plan;  // a copy: nothing is replaced, nothing restored in place
  }
  if (!past_root && !plan.target_now)
    return Status::not_found(req.path + " did not exist at that moment, and does not exist now");
  if (plan.target_now) ROAM_TRY(read_live_tree(txn, plan.target_now->ino, plan));
  ROAM_TRY(choose_in_place(txn, plan));
  return plan;
}

}  // namespace roam
