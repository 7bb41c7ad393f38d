#include "fusefs/control/user_requests.h"

#include <sys/stat.h>

#include <deque>

#include "base/timefmt.h"
#include "fusefs/history/access.h"
#include "fusefs/history/versions.h"
#include "fusefs/oplog/oplog.h"
#include "fusefs/oplog/past_view.h"

namespace roam::control {

namespace {

std::string path_of(const OpRecord& r) { return r.path2.empty() ? r.path : r.path + " -> " + r.path2; }

std::vector<std::string> record_row(const OpRecord& r) {
  return {std::to_string(r.seq), format_time_utc(r.ts_ns), std::string(op_kind_name(r.kind)), path_of(r), caller_text(r.caller)};
}

std::string size_after(const Version& v) {
  if (!v.after || v.after->nlink == 0) return "gone";
  if (S_ISDIR(v.after->mode)) return "dir";
  return std::to_string(v.after->size);
}

// Whether `who` could open `path` for reading in `view`. A refusal (or a
// path that was not there) hides the row; other errors are errors.
Result<bool> could_read(PastView& view, const Identity& who, const std::string& path) {
  auto ino = walk_as(view, who, path);
  if (!ino) return ino.status().err() == EACCES ? Result<bool>(false) : ino.status();
  if (!*ino) return false;
  Status s = check_inode(view, who, **ino, path, kMayRead);
  if (!s && s.err() != EACCES) return s;
  return s.is_ok();
}

// A version is shown when the user could read the file just after the
// change, or, when the change removed it, just before.
Result<bool> version_visible(const StoreTxn& txn, const Identity& who, const Version& v) {
  const OpRecord& r = v.record;
  const bool exists_after = v.after && v.after->nlink != 0;
  PastView view(txn, exists_after ? r.seq : r.seq - 1);
  const bool moved = r.kind == OpKind::kRename && !r.path2.empty();
  return could_read(view, who, exists_after && moved ? r.path2 : r.path);
}

// A record is shown when the user could list the directory it changed
// (search on the way, read on it) just before the change.
Result<bool> record_visible(const StoreTxn& txn, const Identity& who, const OpRecord& r) {
  if (r.path.empty() || r.path == "/") return true;
  PastView view(txn, r.seq - 1);
  return could_read(view, who, split_path(r.path).first);
}

// The newest state in an LMDB snapshot: checkpointed first, read with no lock
// held, so a long scan does not hold up the disk's writers.
Result<ReadTxn> snapshot(Store& store) {
  ROAM_TRY(store.checkpoint());
  return store.begin_snapshot();
}

}  // namespace

Result<Rows> history_rows(Store& store, const HistoryCall& call) {
  ROAM_ASSIGN(std::string path, normalize_disk_path(call.path));
  ROAM_ASSIGN(ReadTxn txn, snapshot(store));
  ROAM_ASSIGN(auto versions, versions_of(txn, path));
  Rows rows;
  for (const auto& v : versions) {
    if (call.as) {
      ROAM_ASSIGN(bool visible, version_visible(txn, *call.as, v));
      if (!visible) continue;
    }
    auto row = record_row(v.record);
    row.push_back(size_after(v));
    rows.push_back(std::move(row));
  }
  if (call.as && rows.empty() && !versions.empty())
    return Status::error(EACCES, "uid " + std::to_string(call.as->uid) + " could never read " + path);
  return rows;
}

// The newest `limit` records the filter and `by` select are found first and
// only they are checked (a past view each): a user's log of a long history
// costs a scan, not a past view per record. So it may show fewer than
// `limit` records when some of those were hidden from them.
Result<Rows> log_rows(Store& store, const LogCall& call) {
  oplog::Filter filter;
  if (call.path) {
    ROAM_ASSIGN(std::string path, normalize_disk_path(*call.path));
    filter.path = std::move(path);
  }
  filter.since_ns = call.since_ns;
  ROAM_ASSIGN(ReadTxn txn, snapshot(store));
  std::deque<OpRecord> kept;
  auto visit = [&](const OpRecord& r) {
    if (call.by && r.caller.comm != *call.by) return true;
    kept.push_back(r);
    if (call.limit != 0 && kept.size() > call.limit) kept.pop_front();
    return true;
  };
  ROAM_TRY(filter.path ? scan_path(txn, filter, visit) : oplog::scan(txn, filter, visit));
  Rows rows;
  for (const auto& r : kept) {
    if (call.as) {
      ROAM_ASSIGN(bool visible, record_visible(txn, *call.as, r));
      if (!visible) continue;
    }
    rows.push_back(record_row(r));
  }
  return rows;
}

Status check_restore(Store& store, const Identity& who, const RestoreRequest& req) {
  {
    ROAM_ASSIGN(ReadTxn txn, store.begin_read());
    PastView then(txn, req.at_seq);
    ROAM_TRY(check_readable(then, who, req.path));
    PastView now(txn, PastView::kNow);
    ROAM_TRY(check_writable(now, who, req.to ? *req.to : req.path));
  }
  RestoreRequest dry = req;
  dry.dry_run = true;
  ROAM_ASSIGN(RestoreResult plan, restore(store, caller_of(who), dry));
  ROAM_ASSIGN(ReadTxn txn, store.begin_read());
  PastView now(txn, PastView::kNow);
  for (const auto& change : plan.changes) ROAM_TRY(check_writable(now, who, change.path));
  return Status::ok();
}

Result<RestoreCall> undo_call(Store& store, const UndoRestoreCall& call) {
  oplog::Filter filter;
  filter.kind = OpKind::kRestore;
  std::optional<OpRecord> newest;
  ROAM_ASSIGN(ReadTxn txn, snapshot(store));
  ROAM_TRY(oplog::scan(txn, filter, [&](const OpRecord& r) {
    if (r.caller.uid == call.as.uid) newest = r;
    return true;
  }));
  if (!newest) return Status::not_found("uid " + std::to_string(call.as.uid) + " has made no restore to undo");
  RestoreCall undo;
  undo.path = newest->path;
  undo.before_op = newest->seq;
  undo.as = call.as;
  return undo;
}

}  // namespace roam::control
