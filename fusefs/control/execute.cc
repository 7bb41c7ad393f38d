#include "fusefs/control/execute.h"

#include "fusefs/history/moment.h"
#include "fusefs/oplog/timefmt.h"

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

Executed execute_restore(Store& store, const Caller& caller, const RestoreCall& call) {
  auto req = to_request(store, call);
  if (!req) return failed(req.status());
  auto result = restore(store, caller, *req);
  if (!result) return failed(result.status());
  Executed e;
  e.reply.moment = req->source;
  e.reply.seq = result->record ? result->record->seq : 0;
  e.reply.changes = result->changes;
  e.result = std::move(*result);
  return e;
}

}  // namespace

Executed execute(Store& store, const Caller& caller, const Request& req) {
  return std::visit([&](const RestoreCall& call) { return execute_restore(store, caller, call); }, req);
}

}  // namespace roam::control
