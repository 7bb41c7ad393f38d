// roamctl restore STORE|MOUNTPOINT PATH (--at TIME | --before-op SEQ) [--to NEWPATH] [--dry-run] [--json]
// roamctl restore --user USER PATH (--at TIME | --before-op SEQ) [--to NEWPATH] [--dry-run]
//
// With --user, from any operator host: the broker forwards the restore to
// the roamfs serving USER's disk, wherever it is attached (and audits it).
//
// On a mounted disk the request goes to roamfs's control socket (so the
// kernel's caches are invalidated and open directories see the change at
// once); dirty pages are flushed first so the kernel cannot write stale data
// over the restored files afterwards. On an unmounted store it runs here.
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

struct RestoreArgs {
  std::string target, path, at, to, user;
  BrokerArgs broker;
  uint64_t before_op = 0;
  bool dry_run = false, json = false;
  // Whether --at and --before-op were given (--before-op 0 is a value).
  const CLI::Option* at_option = nullptr;
  const CLI::Option* before_op_option = nullptr;
};

void print(const RestoreArgs& a, const control::RestoreCall& call, const control::Reply& r) {
  print_changes(r.changes, a.json);
  if (a.json) {
    std::printf("{\"moment\":%s,\"seq\":%llu,\"changes\":%zu,\"dry_run\":%s}\n", json_string(r.moment).c_str(),
                static_cast<unsigned long long>(r.seq), r.changes.size(), a.dry_run ? "true" : "false");
    return;
  }
  const std::string where = call.to ? *call.to : call.path;
  if (r.changes.empty()) {
    std::printf("nothing to restore: %s is already as it was at %s\n", call.path.c_str(), r.moment.c_str());
  } else if (a.dry_run) {
    std::printf("dry run: restoring %s to %s would make %zu changes; nothing was changed\n", where.c_str(),
                r.moment.c_str(), r.changes.size());
  } else {
    std::printf("restored %s to %s: %zu changes, logged as op %llu\n", where.c_str(), r.moment.c_str(),
                r.changes.size(), static_cast<unsigned long long>(r.seq));
    std::printf("undo with: roamctl restore %s %s --before-op %llu\n", a.target.c_str(), where.c_str(),
                static_cast<unsigned long long>(r.seq));
  }
}

// --user: PATH is the only positional argument (it lands in `target`).
int run_through_broker(const RestoreArgs& a) {
  if (!a.path.empty()) return fail("restore", Status::invalid("with --user, give only the PATH on the user's disk"), 2);
  proto::HistoryRequest req = history_request(a.user, "restore");
  req.path = a.target;
  req.at = a.at;
  req.before_op = a.before_op;
  req.to = a.to;
  req.dry_run = a.dry_run;
  return run_change_request("restore", a.broker, req);
}

int run_restore(const RestoreArgs& a) {
  if (a.at_option->count() == 0 && a.before_op_option->count() == 0)
    return fail("restore", Status::invalid("say which moment: --at TIME or --before-op SEQ"), 2);
  if (!a.user.empty()) return run_through_broker(a);
  if (a.path.empty()) return fail("restore", Status::invalid("give STORE|MOUNTPOINT and PATH (or --user USER PATH)"), 2);
  auto target = resolve_target(a.target);
  if (!target) return fail("restore", target.status());
  control::RestoreCall call;
  call.path = disk_path(*target, a.path);
  if (!a.to.empty()) call.to = disk_path(*target, a.to);
  call.dry_run = a.dry_run;
  if (!a.at.empty()) {
    auto t = parse_time(a.at, wall_clock_ns());
    if (!t) return fail("restore", t.status().with_context("--at"));
    call.at_ns = *t;
  } else {
    call.before_op = a.before_op;
  }
  auto reply = run_control(*target, call);
  if (!reply) return fail("restore", reply.status());
  print(a, call, *reply);
  return 0;
}

}  // namespace

void add_restore_command(CLI::App& app, int& exit_code) {
  auto [cmd, a] = add_command<RestoreArgs>(app, "restore", "bring a file or directory back to a past moment",
                                           run_restore, exit_code);
  add_target_argument(cmd, a->target);
  cmd->add_option("path", a->path, "file or directory to restore (\"/\" for the whole disk)");
  cmd->add_option("--user", a->user, "restore on USER's disk through the broker, wherever it is attached");
  add_broker_options(cmd, a->broker, false);
  auto* at = cmd->add_option("--at", a->at, "the moment: ISO 8601, @EPOCH or -90s/-15m/-2h/-3d");
  auto* before = cmd->add_option("--before-op", a->before_op, "just before this operation (its SEQ in roamctl log)");
  at->excludes(before);
  a->at_option = at;
  a->before_op_option = before;
  cmd->add_option("--to", a->to, "restore a copy at this new path instead");
  cmd->add_flag("--dry-run", a->dry_run, "list what would change, change nothing");
  cmd->add_flag("--json", a->json, "one JSON object per line");
}

}  // namespace roam::ctl
