#include "broker/history_requests.h"

#include <charconv>

#include "base/timefmt.h"

namespace roam::broker {

namespace {

Result<int64_t> time_of(const std::string& text, const char* option, int64_t now_ns) {
  auto t = parse_time(text, now_ns);
  if (!t) return t.status().with_context(option);
  return *t;
}

Status absolute(const std::string& path) {
  if (path.empty() || path[0] != '/') return Status::invalid("a path on the disk must start with / (got '" + path + "')");
  return Status::ok();
}

Result<control::Request> restore_request(const proto::HistoryRequest& r, const std::optional<Identity>& as,
                                         int64_t now_ns) {
  ROAM_TRY(absolute(r.path));
  if (r.at.empty() == (r.before_op == 0)) return Status::invalid("say which moment: --at TIME or --before-op SEQ");
  control::RestoreCall c;
  c.path = r.path;
  if (!r.at.empty()) {
    ROAM_ASSIGN(int64_t at, time_of(r.at, "--at", now_ns));
    c.at_ns = at;
  } else {
    c.before_op = r.before_op;
  }
  if (!r.to.empty()) {
    ROAM_TRY(absolute(r.to));
    c.to = r.to;
  }
  c.dry_run = r.dry_run;
  c.as = as;
  return control::Request{std::move(c)};
}

Result<control::Request> log_request(const proto::HistoryRequest& r, const std::optional<Identity>& as,
                                     int64_t now_ns) {
  control::LogCall c;
  if (!r.path.empty()) {
    ROAM_TRY(absolute(r.path));
    c.path = r.path;
  }
  if (!r.since.empty()) {
    ROAM_ASSIGN(int64_t since, time_of(r.since, "--since", now_ns));
    c.since_ns = since;
  }
  if (!r.by.empty()) c.by = r.by;
  c.limit = r.limit != 0 ? r.limit : kDefaultLogLimit;
  c.as = as;
  return control::Request{std::move(c)};
}

Result<control::Request> undo_request(const proto::HistoryRequest& r, const std::optional<Identity>& as,
                                      int64_t now_ns) {
  if (r.by.empty() == (r.by_pid == 0)) return Status::invalid("say whose changes to undo: --by PROCESS or --pid PID");
  if (r.by_pid > UINT32_MAX) return Status::invalid("--pid beyond 32 bits");
  control::UndoCall c;
  if (!r.by.empty()) c.comm = r.by;
  else c.pid = static_cast<uint32_t>(r.by_pid);
  if (!r.since.empty()) {
    ROAM_ASSIGN(int64_t since, time_of(r.since, "--since", now_ns));
    c.since_ns = since;
  }
  c.dry_run = r.dry_run;
  c.as = as;
  return control::Request{std::move(c)};
}

std::string change_row(const RestoreChange& c) {
  return std::string(1, static_cast<char>(c.kind)) + " " + c.path + (c.what.empty() ? "" : "  " + c.what);
}

std::string restore_sentence(const proto::HistoryRequest& r, const control::Reply& reply, bool for_user) {
  const std::string where = r.to.empty() ? r.path : r.to;
  const std::string& path = r.command == "undo-restore" && !reply.changes.empty() ? reply.changes.front().path : where;
  if (reply.changes.empty()) return "nothing to restore: already as it was at " + reply.moment;
  const std::string n = std::to_string(reply.changes.size());
  if (r.dry_run) return "dry run: restoring " + path + " to " + reply.moment + " would make " + n + " changes";
  const std::string seq = std::to_string(reply.seq);
  const std::string undo = for_user ? "roam undo-restore" : "roamctl restore --user " + r.user + " " + path + " --before-op " + seq;
  return "restored " + path + " to " + reply.moment + ": " + n + " changes, logged as op " + seq + " (undo it with: " + undo + ")";
}

// An undo's sentence: what it did (or would do) and how to take it back.
// roamfs's reply message holds the path the logged restore covers.
std::string undo_sentence(const proto::HistoryRequest& r, const control::Reply& reply, bool for_user) {
  size_t n = 0;
  for (const auto& c : reply.changes) n += c.kind != RestoreChange::Kind::kKept;
  const std::string what = reply.moment.substr(reply.moment.rfind("undo of ", 0) == 0 ? 8 : 0);
  if (n == 0) return "nothing to undo: the changes of " + what + " are already undone or kept";
  if (r.dry_run) return "dry run: undoing the changes of " + what + " would make " + std::to_string(n) + " changes";
  const std::string seq = std::to_string(reply.seq);
  const std::string undo =
      for_user ? "roam undo-restore" : "roamctl restore --user " + r.user + " " + reply.message + " --before-op " + seq;
  return "undid the changes of " + what + ": " + std::to_string(n) + " changes, logged as op " + seq +
         " (undo it with: " + undo + ")";
}

}  // namespace

Result<control::Request> to_control_request(const proto::HistoryRequest& r, const std::optional<Identity>& as,
                                            int64_t now_ns) {
  if (r.command == "history") {
    ROAM_TRY(absolute(r.path));
    return control::Request{control::HistoryCall{r.path, as}};
  }
  if (r.command == "log") return log_request(r, as, now_ns);
  if (r.command == "restore") return restore_request(r, as, now_ns);
  if (r.command == "undo") return undo_request(r, as, now_ns);
  if (r.command == "undo-restore") {
    if (!as) return Status::invalid("undo-restore undoes a user's own restore: it is made from their desktop");
    return control::Request{control::UndoRestoreCall{*as}};
  }
  return Status::invalid("unknown command '" + r.command + "' (history, log, restore, undo-restore or undo)");
}

Result<Identity> identity_of(const proto::HistoryRequest& r) {
  if (r.uid > UINT32_MAX || r.gid > UINT32_MAX || r.pid > UINT32_MAX) return Status::invalid("an id beyond 32 bits");
  Identity who{static_cast<uint32_t>(r.uid), static_cast<uint32_t>(r.gid), {}, static_cast<uint32_t>(r.pid), r.comm};
  if (r.groups.empty()) return who;
  std::string_view rest = r.groups;
  for (;;) {
    const size_t comma = std::min(rest.find(','), rest.size());
    const std::string_view cell = rest.substr(0, comma);
    uint32_t gid = 0;
    auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), gid);
    if (cell.empty() || ec != std::errc() || end != cell.data() + cell.size())
      return Status::invalid("groups must be decimal gids separated by commas");
    who.groups.push_back(gid);
    if (comma == rest.size()) break;
    rest.remove_prefix(comma + 1);  // "1," leaves an empty cell: refused above
  }
  return who;
}

Answer answer_for(const proto::HistoryRequest& r, const control::Reply& reply, bool for_user) {
  Answer a;
  if (r.command == "history" || r.command == "log") {
    std::vector<std::string> header{"seq", "time", "op", "path", "by"};
    if (r.command == "history") header.push_back("size after");
    a.rows.push_back(proto::join_cells(header));
    for (const auto& row : reply.rows) a.rows.push_back(proto::join_cells(row));
    a.message = "ok";
    return a;
  }
  a.rows.push_back(proto::join_cells({"change"}));
  for (const auto& c : reply.changes) a.rows.push_back(change_row(c));
  a.message = r.command == "undo" ? undo_sentence(r, reply, for_user) : restore_sentence(r, reply, for_user);
  return a;
}

std::string describe(const proto::HistoryRequest& r) {
  std::string d = r.command;
  if (!r.path.empty()) d += " " + r.path;
  if (!r.at.empty()) d += " --at " + r.at;
  if (r.before_op != 0) d += " --before-op " + std::to_string(r.before_op);
  if (!r.to.empty()) d += " --to " + r.to;
  if (!r.since.empty()) d += " --since " + r.since;
  if (!r.by.empty()) d += " --by " + r.by;
  if (r.by_pid != 0) d += " --pid " + std::to_string(r.by_pid);
  if (r.dry_run) d += " --dry-run";
  return d;
}

}  // namespace roam::broker
