// Broker::handle_history: a request on a disk's history (history_requests.h),
// from a desktop's agent for the user of that desktop, or from an operator.
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "broker/broker.h"
#include "broker/history_requests.h"
#include "broker/records.h"

namespace roam::broker {

namespace {

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string caller_cell(const proto::HistoryRequest& r, bool from_agent) {
  if (!from_agent) return "operator";
  return "uid " + std::to_string(r.uid) + " pid " + std::to_string(r.pid) + " (" + r.comm + ")";
}

}  // namespace

// The disk a request acts on. An agent's: the disk attached to its desktop
// now (a request naming another user is refused, and so is one while a
// switch moves the disk). An operator's: the named user's disk, wherever it
// is attached.
Result<Broker::HistoryTarget> Broker::history_target(const Principal& who, const proto::HistoryRequest& r) {
  std::string user = r.user;
  if (who.role == Principal::Role::kAgent) {
    ROAM_ASSIGN(auto own, user_on_desktop(registry_, who.desktop));
    if (!own) return Status::error(EPERM, "no disk is attached to desktop " + who.desktop);
    if (!user.empty() && user != *own)
      return Status::error(EPERM, "a desktop may only act on the disk attached to it (" + *own + "'s)");
    user = *own;
  } else if (!proto::valid_name(user)) {
    return Status::invalid("say whose disk: --user USER");
  }
  if (switcher_->running_for(user)) return Status::error(EBUSY, user + "'s disk is being switched; try again");
  ROAM_ASSIGN(auto disk, find_disk(registry_, user));
  ROAM_ASSIGN(auto att, find_attachment(registry_, user));
  if (!disk) return Status::not_found("user " + user + " has no disk");
  if (!att || att->mount_point.empty()) return Status::error(ENOTCONN, user + "'s disk is not attached anywhere");
  if (who.role == Principal::Role::kAgent && att->desktop != who.desktop)
    return Status::error(EPERM, "the disk is no longer attached to desktop " + who.desktop);
  return HistoryTarget{user, disk->store, att->mount_point};
}

namespace {

// A restore can take minutes on a big tree; past this a roamfs that does not
// answer is taken for hung (the thread comes back, the request fails).
constexpr double kRoamfsCallTimeoutS = 600;

// Runs `req` on the roamfs serving the disk in `store`, mounted at
// `mount_point`. On a Background thread: touches nothing of the broker's.
// An operator's restore first flushes the mount, so the kernel cannot write
// dirty pages over what comes back (a user's `roam` flushes its own mount
// before asking).
Result<control::Reply> call_roamfs(const std::string& store, const std::string& mount_point,
                                   const control::Request& req, bool flush) {
  if (flush) ROAM_TRY(control::flush_mount(mount_point));
  struct stat st {};
  if (::stat(store.c_str(), &st) != 0)
    return Status::error(errno, "cannot stat " + store + ": " + std::strerror(errno));
  ROAM_ASSIGN(control::Reply reply, control::call(control::socket_dir(store), st.st_uid, req, kRoamfsCallTimeoutS));
  if (reply.err != 0) return Status::error(reply.err, reply.message);
  return reply;
}

}  // namespace

// Builds the control request on the loop (it reads the clock and the
// request), then calls roamfs on a Background thread: an agent's request as
// its caller (narrowed to their permissions there), an operator's as it is.
Status Broker::start_history(const Principal& who, const std::string& rid, const proto::HistoryRequest& r,
                             const HistoryTarget& t) {
  std::optional<Identity> as;
  if (who.role == Principal::Role::kAgent) {
    ROAM_ASSIGN(Identity id, identity_of(r));
    as = std::move(id);
  }
  ROAM_ASSIGN(control::Request req, to_control_request(r, as, now_ns()));
  const bool flush = !as && (r.command == "restore" || r.command == "undo");
  return background_->start([this, who, rid, r, t, req = std::move(req), flush, for_user = as.has_value()] {
    Result<control::Reply> reply = call_roamfs(t.store, t.mount_point, req, flush);
    Result<Answer> answer = reply ? Result<Answer>(answer_for(r, *reply, for_user)) : Result<Answer>(reply.status());
    return Background::Completion([this, who, rid, r, user = t.user, answer = std::move(answer)] {
      finish_history(who, rid, r, user, answer);
    });
  });
}

void Broker::handle_history(const Principal& who, const std::string& rid, const proto::HistoryRequest& r) {
  if (who.role == Principal::Role::kAgent) {
    if (auto wait_s = history_limiter_.take(who.desktop, steady_ms()))
      return reply(rid, r.request_id,
                   Status::error(EAGAIN, "rate limited, retry in " + std::to_string(*wait_s) + " s"));
  }
  auto target = history_target(who, r);
  if (!target) return finish_history(who, rid, r, r.user, target.status());
  if (Status started = start_history(who, rid, r, *target); !started)
    finish_history(who, rid, r, target->user, started);
}

// Audits the request with its outcome and replies.
void Broker::finish_history(const Principal& who, const std::string& rid, const proto::HistoryRequest& r,
                            const std::string& user, const Result<Answer>& answer) {
  const bool from_agent = who.role == Principal::Role::kAgent;
  const Status st = answer ? Status::ok() : answer.status();
  const std::string from = from_agent ? who.desktop : "operator";
  Status audited = registry_.append_audit({std::to_string(now_ns()), "history", user, from,
                                           bounded_cell(caller_cell(r, from_agent)), bounded_cell(describe(r)),
                                           st ? "ok" : bounded_cell(st.message()), ""});
  if (!audited) std::fprintf(stderr, "roam-broker: audit of a history request: %s\n", audited.message().c_str());
  std::fprintf(stderr, "roam-broker: history request from %s (%s) on %s's disk: %s: %s\n", from.c_str(),
               caller_cell(r, from_agent).c_str(), user.c_str(), describe(r).c_str(), st ? "ok" : st.message().c_str());
  if (!answer) return reply(rid, r.request_id, st);
  reply(rid, r.request_id, st, answer->rows, answer->message);
}

}  // namespace roam::broker
