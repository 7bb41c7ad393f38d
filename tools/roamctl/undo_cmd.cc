// roamctl undo STORE|MOUNTPOINT (--by PROCESS | --pid PID) [--since TIME] [--dry-run] [--json]
// roamctl undo --user USER (--by PROCESS | --pid PID) [--since TIME] [--dry-run]
//
// Undoes what one process changed on a disk, keeping every other change
// (fusefs/history/undo.h): on a mounted disk through roamfs's control socket
// (dirty pages flushed first, kernel caches invalidated after), on an
// unmounted store here, and with --user through the broker, wherever the
// user's disk is attached. One logged restore: printed with how to undo it.
#include <cstdio>
#include <string>

#include "base/timefmt.h"
#include "tools/roamctl/broker_client.h"
#include "tools/roamctl/commands.h"
#include "tools/roamctl/control_client.h"
#include "tools/roamctl/json.h"
#include "tools/roamctl/target.h"

namespace roam::ctl {

namespace {

struct UndoArgs {
  std::string target, by, since, user;
  uint32_t pid = 0;
  BrokerArgs broker;
  bool dry_run = false, json = false;
};

size_t count_changes(const control::Reply& r) {
  size_t n = 0;
  for (const auto& c : r.changes) n += c.kind != RestoreChange::Kind::kKept;
  return n;
}

void print(const UndoArgs& a, const control::Reply& r) {
  const size_t n = count_changes(r);
  print_changes(r.changes, a.json);
  if (a.json) {
    std::printf("{\"undo\":%s,\"seq\":%llu,\"changes\":%zu,\"dry_run\":%s}\n", json_string(r.moment).c_str(),
                static_cast<unsigned long long>(r.seq), n, a.dry_run ? "true" : "false");
    return;
  }
  if (n == 0) {
    std::printf("nothing to undo: %s\n", r.moment.c_str());
  } else if (a.dry_run) {
    std::printf("dry run: %s would make %zu changes; nothing was changed\n", r.moment.c_str(), n);
  } else {
    std::printf("%s: %zu changes, logged as op %llu\n", r.moment.c_str(), n, static_cast<unsigned long long>(r.seq));
    std::printf("undo with: roamctl restore %s %s --before-op %llu\n", a.target.c_str(), r.message.c_str(),
                static_cast<unsigned long long>(r.seq));
  }
}

// --user: no STORE|MOUNTPOINT.
int run_through_broker(const UndoArgs& a) {
  if (!a.target.empty()) return fail("undo", Status::invalid("with --user, give no STORE|MOUNTPOINT"), 2);
  proto::HistoryRequest req = history_request(a.user, "undo");
  req.by = a.by;
  req.by_pid = a.pid;
  req.since = a.since;
  req.dry_run = a.dry_run;
  return run_change_request("undo", a.broker, req);
}

int run_undo(const UndoArgs& a) {
  if (a.by.empty() == (a.pid == 0))
    return fail("undo", Status::invalid("say whose changes to undo: --by PROCESS or --pid PID"), 2);
  if (!a.user.empty()) return run_through_broker(a);
  if (a.target.empty()) return fail("undo", Status::invalid("give STORE|MOUNTPOINT (or --user USER)"), 2);
  control::UndoCall call;
  if (!a.by.empty()) call.comm = a.by;
  else call.pid = a.pid;
  if (!a.since.empty()) {
    auto t = parse_time(a.since, wall_clock_ns());
    if (!t) return fail("undo", t.status().with_context("--since"));
    call.since_ns = *t;
  }
  call.dry_run = a.dry_run;
  auto reply = run_control(a.target, call);
  if (!reply) return fail("undo", reply.status());
  print(a, *reply);
  return 0;
}

}  // namespace

void add_undo_command(CLI::App& app, int& exit_code) {
  auto [cmd, a] = add_command<UndoArgs>(app, "undo", "undo what one process changed, keeping every other change",
                                        run_undo, exit_code);
  cmd->add_option("target", a->target, "STORE or MOUNTPOINT");
  cmd->add_option("--user", a->user, "undo on USER's disk through the broker, wherever it is attached");
  add_broker_options(cmd, a->broker, false);
  auto* by = cmd->add_option("--by", a->by, "the process name (comm) as roamctl log shows it");
  auto* pid = cmd->add_option("--pid", a->pid, "the process id as roamctl log shows it");
  by->excludes(pid);
  cmd->add_option("--since", a->since, "only its changes at or after TIME (ISO 8601, @EPOCH, -2h)");
  cmd->add_flag("--dry-run", a->dry_run, "list every path and what would happen to it, change nothing");
  cmd->add_flag("--json", a->json, "one JSON object per line");
}

}  // namespace roam::ctl
