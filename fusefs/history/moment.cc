#include "fusefs/history/moment.h"

#include "fusefs/oplog/oplog.h"
#include "base/timefmt.h"
#include "fusefs/store/codec.h"

namespace roam {

namespace {

// The oldest state the log can still rebuild is the one just before its oldest
// record; before that, records needed to undo have been dropped by retention.
Status check_retained(const StoreTxn& txn, uint64_t oldest, uint64_t want_seq) {
  if (oldest <= 1 || want_seq + 1 >= oldest) return Status::ok();
  ROAM_ASSIGN(auto rec, oplog::get(txn, oldest));
  const std::string when = rec ? format_time_utc(rec->ts_ns - 1) : "?";
  return Status::error(ERANGE, "that moment is older than the disk's retained history; the oldest restorable moment is " +
                                   when + " (--before-op " + std::to_string(oldest) + ")");
}

// The times of dropped records are gone with them: before the oldest
// retained record, the state is known to be the one after the record before
// it only from the nanosecond before the oldest record on (the moment
// check_retained names). Any earlier time may fall before dropped records.
Status check_time_retained(const StoreTxn& txn, uint64_t oldest, uint64_t first_after, int64_t ts_ns) {
  if (oldest <= 1 || first_after != oldest) return Status::ok();
  ROAM_ASSIGN(auto rec, oplog::get(txn, oldest));
  if (rec && ts_ns >= rec->ts_ns - 1) return Status::ok();
  return check_retained(txn, oldest, 0);
}

}  // namespace

Status check_still_held(const StoreTxn& txn, uint64_t seq) {
  ROAM_ASSIGN(auto oldest, oplog::oldest_seq(txn));
  if (!oldest) return Status::ok();
  return check_retained(txn, *oldest, seq);
}

Result<int64_t> store_created_ns(const StoreTxn& txn) {
  ROAM_ASSIGN(auto v, txn.raw().get(txn.dbis().meta, kMetaCreated));
  if (!v) return Status::corrupt("meta table has no creation time");
  if (v->size() != 8) return Status::corrupt("meta table: malformed creation time");
  return static_cast<int64_t>(codec::get_be64(*v));
}

// A log with no records: a new disk (every moment is its empty state), or
// one whose history space pressure dropped whole (oplog::last_dropped): the
// disk as it is now from the last dropped record on, and nothing before.
Result<Moment> moment_of_empty_log(const StoreTxn& txn, int64_t ts_ns, const std::string& label) {
  ROAM_ASSIGN(auto dropped, oplog::last_dropped(txn));
  if (!dropped) return Moment{0, label};
  if (ts_ns < dropped->second)
    return Status::error(ERANGE, "history before " + format_time_utc(dropped->second) +
                                     " was dropped to free space; " + label + " is no longer kept");
  return Moment{dropped->first, label};
}

Result<Moment> moment_at(const StoreTxn& txn, int64_t ts_ns, int64_t now_ns) {
  const std::string label = format_time_utc(ts_ns);
  ROAM_ASSIGN(int64_t created, store_created_ns(txn));
  if (ts_ns < created)
    return Status::error(ERANGE, "the disk did not exist at " + label + "; it was created at " +
                                     format_time_utc(created));
  if (ts_ns > now_ns) return Status::error(ERANGE, label + " is in the future");
  ROAM_ASSIGN(auto bounds, oplog::seq_bounds(txn));
  if (!bounds) return moment_of_empty_log(txn, ts_ns, label);
  ROAM_ASSIGN(uint64_t first_after, oplog::first_seq_at(txn, ts_ns + 1));
  const uint64_t seq = first_after - 1;
  ROAM_TRY(check_retained(txn, bounds->first, seq));
  ROAM_TRY(check_time_retained(txn, bounds->first, first_after, ts_ns));
  return Moment{seq, label};
}

Result<Moment> moment_before_op(const StoreTxn& txn, uint64_t op) {
  ROAM_ASSIGN(auto bounds, oplog::seq_bounds(txn));
  if (!bounds || op < bounds->first || op > bounds->second) {
    const std::string held = bounds ? "ops " + std::to_string(bounds->first) + " to " + std::to_string(bounds->second)
                                    : "no ops yet";
    return Status::not_found("there is no op " + std::to_string(op) + " in the log; it holds " + held);
  }
  return Moment{op - 1, "before op " + std::to_string(op)};
}

Result<Moment> moment_of(const StoreTxn& txn, std::optional<int64_t> at_ns, std::optional<uint64_t> before_op,
                         int64_t now_ns) {
  if (at_ns) return moment_at(txn, *at_ns, now_ns);
  if (before_op) return moment_before_op(txn, *before_op);
  return Status::invalid("say which moment to restore to: --at TIME or --before-op SEQ");
}

}  // namespace roam
