// The write phase of a restore: from a RestorePlan (restore_plan.h), one
// Mutation that writes only what differs between the tree now and the tree
// as it was.
#include "fusefs/history/restore.h"

#include <sys/stat.h>

#include <algorithm>
#include <set>

#include "fusefs/engine/fs.h"
#include "fusefs/engine/mutation.h"
#include "fusefs/engine/names.h"
#include "fusefs/history/restore_plan.h"

namespace roam {

namespace {

std::string rel_join(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

std::string describe(const Inode& now, const Inode& then, bool data, bool xattrs) {
  std::vector<std::string> what;
  if (data || now.size != then.size || now.symlink_target != then.symlink_target) what.push_back("content");
  if (now.mode != then.mode) what.push_back("mode");
  if (now.uid != then.uid || now.gid != then.gid) what.push_back("owner");
  if (now.mtime != then.mtime || now.atime != then.atime) what.push_back("times");
  if (xattrs) what.push_back("xattrs");
  std::string s;
  for (const auto& w : what) s += (s.empty() ? "" : ", ") + w;
  return s;
}

class Restorer {
 public:
  Restorer(Mutation& m, RestorePlan& plan, const Caller& caller) : m_(m), plan_(plan), caller_(caller) {
    for (const auto& [ino, live] : plan_.live)
      for (const auto& [parent, name] : live.names)
        live_by_path_[parent == plan_.parent ? "" : rel_join(plan_.live.at(parent).rel, name)] = ino;
  }

  // The inode number past inode `p` is restored as (valid after run()).
  uint64_t target_of(uint64_t p) const { return target_.at(p); }

  Result<RestoreResult> run() {
    for (uint64_t p : plan_.past_order)
      target_[p] = plan_.in_place.count(p) ? p : m_.new_inode(0, caller_, now_).ino;
    ROAM_TRY(retire_live());
    for (uint64_t p : plan_.past_order) ROAM_TRY(restore_node(p));
    ROAM_TRY(place_root());
    report_gone();
    return std::move(result_);
  }

 private:
  // Inodes of the tree now that are not restored in place lose their names in
  // it; their directories are emptied. They stay in history.
  Status retire_live() {
    for (auto& [ino, live] : plan_.live) {
      if (plan_.in_place.count(ino)) continue;
      Inode inode = live.inode;
      if (S_ISDIR(inode.mode)) {
        for (const auto& [name, d] : live.entries) ROAM_TRY(del_entry(ino, name));
        inode.nlink = 0;
        inode.mtime = now_;
      } else {
        for (const auto& [parent, name] : live.names) ROAM_TRY(drop_name(m_, inode, parent, name));
        if (S_ISREG(inode.mode) && inode.size > 0) result_.retired_files.push_back(disk_path(live.rel));
      }
      inode.ctime = now_;
      ROAM_TRY(m_.put_inode(inode));
      result_.changed_inodes.push_back(ino);
    }
    return Status::ok();
  }

  Status restore_node(uint64_t p) {
    const PastNode& past = plan_.past.at(p);
    const uint64_t t = target_.at(p);
    std::optional<Inode> now;
    if (t == p) {
      ROAM_ASSIGN(now, m_.txn().get_inode(t));
    }
    Inode want = past.inode;
    want.ino = t;
    want.nlink = S_ISDIR(want.mode) ? 2 + past.subdirs : static_cast<uint32_t>(past.names.size());
    ROAM_TRY(set_names(want, past, now));
    ROAM_ASSIGN(bool xattrs_changed, restore_xattrs(t, past, now.has_value()));
    bool data_changed = false;
    if (S_ISREG(want.mode)) {
      ROAM_ASSIGN(data_changed, restore_data(t, past, now.has_value()));
    }
    if (S_ISDIR(want.mode)) ROAM_TRY(restore_entries(t, past, now.has_value()));
    Inode same_ctime = want;
    if (now) same_ctime.ctime = now->ctime;
    const bool inode_changed = !now || !(same_ctime == *now);
    want.ctime = now_;
    if (inode_changed || xattrs_changed || data_changed) {
      ROAM_TRY(m_.put_inode(want));
      result_.changed_inodes.push_back(t);
    }
    report(p, past, t, now, want, inode_changed, data_changed, xattrs_changed);
    return Status::ok();
  }

  // Primary name in the inode; the others in `links`. An inode whose names
  // are the same as now keeps its primary name (which one is primary is not
  // part of the restored state).
  Status set_names(Inode& want, const PastNode& past, const std::optional<Inode>& now) {
    std::set<std::pair<uint64_t, std::string>> names;
    for (const auto& [past_parent, name] : past.names) {
      if (past_parent == 0 && plan_.parent == 0) return Status::ok();  // the disk's root keeps its (empty) name
      names.emplace(past_parent == 0 ? plan_.parent : target_.at(past_parent), past_parent == 0 ? plan_.name : name);
    }
    if (auto live = plan_.live.find(want.ino); now && live != plan_.live.end()) {
      std::set<std::pair<uint64_t, std::string>> names_now(live->second.names.begin(), live->second.names.end());
      if (names_now == names) {
        want.parent = now->parent;
        want.name = now->name;
        return Status::ok();
      }
    }
    if (now) ROAM_TRY(drop_extra_names(m_, want.ino));
    bool primary = true;
    for (const auto& [parent, name] : names) {
      if (primary) {
        want.parent = parent;
        want.name = name;
        primary = false;
      } else {
        ROAM_TRY(m_.write_txn().put_link(want.ino, parent, name));
      }
    }
    return Status::ok();
  }

  Result<bool> restore_xattrs(uint64_t t, const PastNode& past, bool in_place) {
    bool changed = false;
    if (in_place) {
      ROAM_ASSIGN(auto names, m_.txn().list_xattrs(t));
      for (const auto& n : names) {
        if (past.xattrs.count(n)) continue;
        ROAM_TRY(m_.del_xattr(t, n));
        changed = true;
      }
    }
    for (const auto& [name, value] : past.xattrs) {
      std::optional<std::string> now;
      if (in_place) {
        ROAM_ASSIGN(now, m_.txn().get_xattr(t, name));
      }
      if (now == value) continue;
      ROAM_TRY(m_.set_xattr(t, name, value));
      changed = true;
    }
    return changed;
  }

  // Remaps only the byte ranges whose data differs; the restored ranges name
  // the past blobs (no data is copied).
  Result<bool> restore_data(uint64_t t, const PastNode& past, bool in_place) {
    if (!in_place) {  // a new inode: its extents are exactly the past ones
      ROAM_TRY(m_.fill_new_file(t, past.extents));
      return !past.extents.empty();
    }
    ROAM_ASSIGN(auto now, m_.txn().extents_in(t, 0, UINT64_MAX));
    const Ranges ranges = differing_ranges(now, past.extents);
    for (auto [a, b] : ranges) {
      uint64_t pos = a;
      for (const Extent& e : past.extents) {
        if (e.end() <= pos || e.file_offset >= b) continue;
        if (e.file_offset > pos) ROAM_TRY(m_.remap(t, pos, e.file_offset - pos, std::nullopt));  // a hole
        Extent piece = e;
        const uint64_t lo = std::max(e.file_offset, pos), hi = std::min(e.end(), b);
        piece.blob_offset = static_cast<uint32_t>(e.blob_offset + (lo - e.file_offset));
        piece.file_offset = lo;
        piece.length = static_cast<uint32_t>(hi - lo);
        ROAM_TRY(m_.remap(t, lo, hi - lo, piece));
        pos = hi;
      }
      if (pos < b) ROAM_TRY(m_.remap(t, pos, b - pos, std::nullopt));
      result_.changed_data.emplace_back(t, a, b - a);
    }
    return !ranges.empty();
  }

  Status restore_entries(uint64_t t, const PastNode& past, bool in_place) {
    std::map<std::string, Dirent> now;
    if (auto it = plan_.live.find(t); in_place && it != plan_.live.end()) {
      now.insert(it->second.entries.begin(), it->second.entries.end());
    } else if (in_place) {  // a removed directory: normally empty
      ROAM_ASSIGN(auto entries, m_.txn().list_dir(t, "", SIZE_MAX));
      now.insert(entries.begin(), entries.end());
    }
    std::map<std::string, Dirent> want;
    for (const auto& [name, child] : past.children)
      want[name] = Dirent{target_.at(child), type_of(plan_.past.at(child).inode.mode)};
    for (const auto& [name, d] : now)
      if (!want.count(name)) ROAM_TRY(del_entry(t, name));
    for (const auto& [name, d] : want) {
      auto it = now.find(name);
      if (it != now.end() && it->second.ino == d.ino && it->second.type == d.type) continue;
      ROAM_TRY(m_.put_dirent(t, name, d));
      result_.changed_entries.emplace_back(t, name);
    }
    return Status::ok();
  }

  // The restored root's entry in its parent, which is outside the tree.
  Status place_root() {
    if (plan_.parent == 0) return Status::ok();
    if (plan_.past_root == 0) return remove_root();
    const PastNode& root = plan_.past.at(plan_.past_root);
    const Dirent want{target_.at(plan_.past_root), type_of(root.inode.mode)};
    const auto& now = plan_.target_now;
    if (now && now->ino == want.ino && now->type == want.type) return Status::ok();
    ROAM_TRY(m_.put_dirent(plan_.parent, plan_.name, want));
    result_.changed_entries.emplace_back(plan_.parent, plan_.name);
    ROAM_ASSIGN(Inode dir, m_.inode(plan_.parent));
    if (now && now->type == S_IFDIR) --dir.nlink;
    if (want.type == S_IFDIR) ++dir.nlink;
    dir.mtime = dir.ctime = now_;
    ROAM_TRY(m_.put_inode(dir));
    result_.changed_inodes.push_back(plan_.parent);
    return Status::ok();
  }

  // Nothing was at the path then: its entry goes (what it named stays in history).
  Status remove_root() {
    const auto& now = plan_.target_now;
    ROAM_TRY(del_entry(plan_.parent, plan_.name));
    ROAM_ASSIGN(Inode dir, m_.inode(plan_.parent));
    if (now && now->type == S_IFDIR) --dir.nlink;
    dir.mtime = dir.ctime = now_;
    ROAM_TRY(m_.put_inode(dir));
    result_.changed_inodes.push_back(plan_.parent);
    return Status::ok();
  }

  Status del_entry(uint64_t dir, const std::string& name) {
    result_.changed_entries.emplace_back(dir, name);
    return m_.del_dirent(dir, name);
  }

  std::string disk_path(const std::string& rel) const {
    return rel.empty() ? plan_.target_path : join_path(plan_.target_path, rel);
  }

  // One line per name that comes back, changes or goes away.
  void report(uint64_t p, const PastNode& past, uint64_t t, const std::optional<Inode>& now, const Inode& want,
              bool inode_changed, bool data, bool xattrs) {
    for (size_t i = 0; i < past.names.size(); ++i) {
      const auto& [parent, name] = past.names[i];
      const std::string rel = i == 0 ? past.rel : rel_join(plan_.past.at(parent).rel, name);
      auto live = live_by_path_.find(rel);
      if (live == live_by_path_.end() || live->second == 0) {
        result_.changes.push_back({RestoreChange::Kind::kBack, disk_path(rel), ""});
        continue;
      }
      const uint64_t was = live->second;
      live->second = 0;  // accounted for
      if (was == p && was != t) {  // the same file, restored as a new inode (its data goes back)
        if (i == 0)
          result_.changes.push_back({RestoreChange::Kind::kChanged, disk_path(rel),
                                     describe(plan_.live.at(was).inode, want, true, xattrs)});
        continue;
      }
      if (was != t || !now) {  // another file is at this path now
        result_.changes.push_back({RestoreChange::Kind::kChanged, disk_path(rel), "replaced"});
        continue;
      }
      if (i > 0) continue;  // the inode's changes are reported once, under its first name
      std::string what = describe(*now, want, data, xattrs);
      if (what.empty() && inode_changed) what = "links";
      if (!what.empty()) result_.changes.push_back({RestoreChange::Kind::kChanged, disk_path(rel), what});
    }
  }

  void report_gone() {
    for (const auto& [rel, ino] : live_by_path_)
      if (ino != 0)
        result_.changes.push_back({RestoreChange::Kind::kGone, disk_path(rel), ""});
  }

  Mutation& m_;
  RestorePlan& plan_;
  const Caller& caller_;
  const Timespec now_ = now_timespec();
  std::map<uint64_t, uint64_t> target_;  // past ino -> ino it is restored as
  std::map<std::string, uint64_t> live_by_path_;  // first names now -> ino (0 once reported)
  RestoreResult result_;
};

}  // namespace

Result<std::string> normalize_disk_path(std::string_view path) {
  std::string out;
  size_t pos = 0;
  while (pos < path.size()) {
    const size_t end = std::min(path.find('/', pos), path.size());
    const std::string_view part = path.substr(pos, end - pos);
    pos = end + 1;
    if (part.empty()) continue;
    if (part == "." || part == "..") return Status::invalid("a path inside the disk cannot contain . or ..");
    if (part.size() > kNameMax) return Status::error(ENAMETOOLONG, "a name in the path is longer than 255 bytes");
    out += "/";
    out += part;
  }
  return out.empty() ? std::string("/") : out;
}

Result<AppliedPlan> apply_restore_plan(Mutation& m, RestorePlan& plan, const Caller& caller) {
  Restorer restorer(m, plan, caller);
  ROAM_ASSIGN(RestoreResult result, restorer.run());
  const uint64_t root = plan.past_root ? restorer.target_of(plan.past_root) : plan.target_now->ino;
  return AppliedPlan{std::move(result), root};
}

Result<RestoreResult> restore(Store& store, const Caller& caller, const RestoreRequest& req) {
  ROAM_ASSIGN(Mutation m, Mutation::begin(store, OpKind::kRestore, caller));
  PastView past(m.txn(), req.at_seq);
  ROAM_ASSIGN(RestorePlan plan, plan_restore(m.txn(), past, req));
  ROAM_ASSIGN(AppliedPlan applied, apply_restore_plan(m, plan, caller));
  RestoreResult result = std::move(applied.result);
  OpRecord& rec = m.record();
  rec.ino = applied.root_ino;
  rec.path = plan.target_path;
  if (req.to) rec.path2 = req.path;
  rec.name = req.source;
  if (req.dry_run || result.changes.empty()) return result;  // the transaction aborts
  ROAM_ASSIGN(OpRecord committed, m.commit());
  result.record = std::move(committed);
  return result;
}

}  // namespace roam
