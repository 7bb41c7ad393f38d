#include "fusefs/control/execute.h"

#include <fstream>

#include "fusefs/control/user_requests.h"
#include "fusefs/gc/gc.h"
#include "fusefs/history/moment.h"
#include "fusefs/history/undo.h"
#include "base/timefmt.h"

namespace roam::control {

namespace {

Result<RestoreRequest> to_request(Store& store, const RestoreCall& call) {
  RestoreRequest req;
  ROAM_ASSIGN(req.path, normalize_disk_path(call.path));
  if (call.to) {
    ROAM_ASSIGN(std::string to, normalize_disk_path(*call.to));
    req.to = std::move(to);
  }
  req.dry_run = call.dry_run;
  ROAM_ASSIGN(ReadTxn txn, store.begin_read());
  ROAM_ASSIGN(Moment moment, moment_of(txn, call.at_ns, call.before_op, wall_clock_ns()));
  req.at_seq = moment.seq;
  req.source = moment.label;
  return req;
}

Executed failed(const Status& s) {
  Executed e;
  e.reply.err = s.err();
  e.reply.message = s.message();
  return e;
}

Executed execute_restore(Store& store, const Context& context, const RestoreCall& call) {
  auto req = to_request(store, call);
  if (!req) return failed(req.status());
  if (call.as) {
    if (Status allowed = check_restore(store, *call.as, *req); !allowed) return failed(allowed);
  }
  auto result = restore(store, call.as ? caller_of(*call.as) : context.caller, *req);
  if (!result) return failed(result.status());
  Executed e;
  e.reply.moment = req->source;
  e.reply.seq = result->record ? result->record->seq : 0;
  e.reply.changes = result->changes;
  e.result = std::move(*result);
  return e;
}

void add_usage(const char* prefix, const SpaceUsage& u, Reply& r) {
  const std::string p(prefix);
  r.figures.emplace_back(p + "live_bytes", static_cast<int64_t>(u.live_bytes));
  r.figures.emplace_back(p + "history_bytes", static_cast<int64_t>(u.history_bytes));
  r.figures.emplace_back(p + "segment_bytes", static_cast<int64_t>(u.segment_bytes));
  r.figures.emplace_back(p + "records", static_cast<int64_t>(u.records));
}

Executed execute_gc(Store& store, const Context& context) {
  GcOptions options;
  options.now_ns = wall_clock_ns();
  options.is_open = context.is_open;
  auto report = collect_garbage(store, options);
  if (!report) return failed(report.status());
  Executed e;
  Reply& r = e.reply;
  r.figures = {{"records_dropped", static_cast<int64_t>(report->records_dropped)},
               {"inodes_freed", static_cast<int64_t>(report->inodes_freed)},
               {"blobs_freed", static_cast<int64_t>(report->blobs_freed)},
               {"bytes_freed", static_cast<int64_t>(report->bytes_freed)},
               {"segments_removed", static_cast<int64_t>(report->segments_removed)},
               {"bytes_moved", static_cast<int64_t>(report->bytes_moved)}};
  add_usage("before_", report->before, r);
  add_usage("after_", report->after, r);
  for (const auto& p : report->problems) r.message += (r.message.empty() ? "" : "; ") + p;
  return e;
}

Executed execute_retention(Store& store, const RetentionCall& call) {
  auto txn = store.begin_write();
  if (!txn) return failed(txn.status());
  auto retention = load_retention(*txn);
  if (!retention) return failed(retention.status());
  if (call.max_age_ns) retention->max_age_ns = *call.max_age_ns;
  if (call.max_history_bytes) retention->max_history_bytes = *call.max_history_bytes;
  if (call.min_window_ns) retention->min_window_ns = *call.min_window_ns;
  if (call.max_age_ns || call.max_history_bytes || call.min_window_ns) {
    if (Status s = save_retention(*txn, *retention); !s) return failed(s);
  }
  auto trim = load_pressure_trim(*txn);
  if (!trim) return failed(trim.status());
  if (Status s = txn->commit(); !s) return failed(s);
  Executed e;
  e.reply.figures = {{"max_age_ns", retention->max_age_ns},
                     {"max_history_bytes", static_cast<int64_t>(retention->max_history_bytes)},
                     {"min_window_ns", retention->min_window_ns}};
  if (*trim) {
    e.reply.figures.emplace_back("pressure_trim_ns", (*trim)->at_ns);
    e.reply.figures.emplace_back("pressure_kept_from_ns", (*trim)->kept_from_ns);
  }
  return e;
}

Executed execute_quota(Store& store, const QuotaCall& call) {
  auto txn = store.begin_write();
  if (!txn) return failed(txn.status());
  if (call.quota_bytes) {
    if (Status s = txn->set_quota(*call.quota_bytes); !s) return failed(s);
  }
  auto quota = txn->quota_bytes();
  if (!quota) return failed(quota.status());
  auto live = txn->live_bytes();
  if (!live) return failed(live.status());
  if (Status s = txn->commit(); !s) return failed(s);  // nothing changed: nothing logged
  // A new quota is durable at once, and readers of the checkpoint (the
  // broker's status) see it.
  if (call.quota_bytes) {
    if (Status s = store.checkpoint(); !s) return failed(s);
  }
  Executed e;
  e.reply.figures = {{"quota_bytes", static_cast<int64_t>(*quota)}, {"live_bytes", static_cast<int64_t>(*live)}};
  return e;
}

Executed with_rows(Result<Rows> rows) {
  if (!rows) return failed(rows.status());
  Executed e;
  e.reply.rows = std::move(*rows);
  return e;
}

Executed execute_undo(Store& store, const Context& context, const UndoRestoreCall& call) {
  auto undo = undo_call(store, call);
  if (!undo) return failed(undo.status());
  return execute_restore(store, context, *undo);
}

Executed execute_undo_process(Store& store, const Context& context, const UndoCall& call) {
  UndoRequest req;
  req.target = UndoTarget{call.comm, call.pid};
  req.since_ns = call.since_ns;
  req.dry_run = call.dry_run;
  RestoreCheck allowed;
  if (call.as) allowed = [&](const RestoreRequest& r) { return check_restore(store, *call.as, r); };
  auto result = undo_process(store, call.as ? caller_of(*call.as) : context.caller, req, allowed);
  if (!result) return failed(result.status());
  Executed e;
  e.reply.moment = result->source;
  e.reply.seq = result->restore.record ? result->restore.record->seq : 0;
  e.reply.changes = result->restore.changes;
  if (result->restore.record) e.reply.message = result->restore.record->path;
  e.result = std::move(result->restore);
  return e;
}

}  // namespace

Caller process_caller(uint32_t uid, uint32_t gid, uint32_t pid) {
  Caller c{uid, gid, pid, ""};
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::getline(in, c.comm);
  return c;
}

Executed execute(Store& store, const Context& context, const Request& req) {
  struct Dispatch {
    Store& store;
    const Context& context;
    Executed operator()(const RestoreCall& c) const { return execute_restore(store, context, c); }
    Executed operator()(const GcCall&) const { return execute_gc(store, context); }
    Executed operator()(const RetentionCall& c) const { return execute_retention(store, c); }
    Executed operator()(const QuotaCall& c) const { return execute_quota(store, c); }
    Executed operator()(const HistoryCall& c) const { return with_rows(history_rows(store, c)); }
    Executed operator()(const LogCall& c) const { return with_rows(log_rows(store, c)); }
    Executed operator()(const UndoRestoreCall& c) const { return execute_undo(store, context, c); }
    Executed operator()(const UndoCall& c) const { return execute_undo_process(store, context, c); }
    // Only a roamfs serving the disk remotely answers these (fuse/control_handler.cc).
    Executed operator()(const RemoteAllowCall&) const { return not_remote(); }
    Executed operator()(const RemoteFenceCall&) const { return not_remote(); }
    static Executed not_remote() {
      return failed(Status::error(ENOTSUP, "this disk is not served remotely (roamfs runs without --remote-listen)"));
    }
    Executed operator()(const CheckpointCall&) const {
      Status s = store.checkpoint();
      return s ? Executed{} : failed(s);
    }
  };
  return std::visit(Dispatch{store, context}, req);
}

}  // namespace roam::control
