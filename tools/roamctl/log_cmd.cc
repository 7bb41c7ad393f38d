// roamctl log STORE|MOUNTPOINT [--path P] [--since T] [--until T] [--op KIND] [--json]
// roamctl log --user USER [--path P] [--since T] [--limit N] [--json]: through
// the broker, from any operator host, wherever USER's disk is attached.
#include <linux/fs.h>  // RENAME_NOREPLACE, RENAME_EXCHANGE
#include <sys/stat.h>

#include <cstdio>
#include <string>

#include "fusefs/history/versions.h"
#include "fusefs/oplog/oplog.h"
#include "base/timefmt.h"
#include "tools/roamctl/broker_client.h"
#include "tools/roamctl/commands.h"
#include "tools/roamctl/control_client.h"
#include "tools/roamctl/json.h"
#include "tools/roamctl/target.h"

namespace roam::ctl {

namespace {

struct LogArgs {
  std::string target, path, since, until, op, user;
  BrokerArgs broker;
  bool json = false;
  size_t limit = 0;
};

std::string octal(uint32_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
  return buf;
}

// A write, truncate or chown that took away setuid/setgid or capabilities.
std::string killed(const OpRecord& r) {
  return (r.flags & kKilledPrivileges) ? " privileges dropped (mode " + octal(r.mode) + ")" : "";
}

// The arguments of a record, for people.
std::string details(const OpRecord& r) {
  switch (r.kind) {
    case OpKind::kCreate:
    case OpKind::kMkdir:
    case OpKind::kTmpfile:
      return "mode " + octal(r.mode);
    case OpKind::kMknod:
      return "mode " + octal(r.mode) + (r.rdev ? " dev " + std::to_string(r.rdev) : "");
    case OpKind::kSymlink:
      return "-> " + r.name;
    case OpKind::kWrite:
      return "offset " + std::to_string(r.offset) + " length " + std::to_string(r.length) + " size " +
             std::to_string(r.size) + killed(r);
    case OpKind::kCopy:
      return "from " + r.name + " offset " + std::to_string(r.rdev) + ": " + std::to_string(r.length) +
             " bytes at offset " + std::to_string(r.offset) + " size " + std::to_string(r.size);
    case OpKind::kFallocate:
      return "mode " + std::to_string(r.flags) + " offset " + std::to_string(r.offset) + " length " +
             std::to_string(r.length);
    case OpKind::kSetattr: {
      std::string d;
      if (r.flags & kSetMode) d += " mode " + octal(r.mode);
      if (r.flags & kSetUid) d += " uid " + std::to_string(r.uid);
      if (r.flags & kSetGid) d += " gid " + std::to_string(r.gid);
      if (r.flags & kSetSize) d += " size " + std::to_string(r.size);
      if (r.flags & kSetAtime) d += " atime";
      if (r.flags & kSetMtime) d += " mtime";
      d += killed(r);
      return d.empty() ? "ctime" : d.substr(1);
    }
    case OpKind::kSetxattr:
      return r.name + " (" + std::to_string(r.length) + " bytes)";
    case OpKind::kRemovexattr:
      return r.name;
    case OpKind::kRestore:
      return "to " + r.name;
    case OpKind::kRename:
      if (r.flags & RENAME_EXCHANGE) return "exchange";
      if (r.flags & RENAME_NOREPLACE) return "noreplace";
      return "";
    default:
      return "";
  }
}

void print_row(const OpRecord& r) {
  std::string path = r.path;
  if (!r.path2.empty()) path += " -> " + r.path2;
  std::printf("%8llu  %s  %-11s  %-40s  %-28s  %s\n", static_cast<unsigned long long>(r.seq),
              format_time_local(r.ts_ns).c_str(), std::string(op_kind_name(r.kind)).c_str(), path.c_str(),
              caller_text(r.caller).c_str(), details(r).c_str());
}

void print_json(const OpRecord& r) {
  std::printf(
      "{\"seq\":%llu,\"ts_ns\":%lld,\"time\":%s,\"op\":%s,\"ino\":%llu,\"path\":%s,\"uid\":%u,\"gid\":%u,"
      "\"pid\":%u,\"comm\":%s",
      static_cast<unsigned long long>(r.seq), static_cast<long long>(r.ts_ns), json_string(format_time_utc(r.ts_ns)).c_str(),
      json_string(op_kind_name(r.kind)).c_str(), static_cast<unsigned long long>(r.ino), json_string(r.path).c_str(),
      r.caller.uid, r.caller.gid, r.caller.pid, json_string(r.caller.comm).c_str());
  if (!r.caller.desktop.empty()) std::printf(",\"desktop\":%s", json_string(r.caller.desktop).c_str());
  if (!r.path2.empty()) std::printf(",\"path2\":%s", json_string(r.path2).c_str());
  if (r.ino2) std::printf(",\"ino2\":%llu", static_cast<unsigned long long>(r.ino2));
  std::printf(",\"details\":%s}\n", json_string(details(r)).c_str());
}

int run_through_broker(const LogArgs& a) {
  if (!a.target.empty() || !a.until.empty() || !a.op.empty())
    return fail("log", Status::invalid("with --user, give no disk, --until nor --op"), 2);
  proto::HistoryRequest req = history_request(a.user, "log");
  req.path = a.path;
  req.since = a.since;
  req.limit = a.limit;
  BrokerArgs broker = a.broker;
  broker.json = a.json;
  return run_request("log", broker, req, "no records");
}

int run_log(const LogArgs& a) {
  if (!a.user.empty()) return run_through_broker(a);
  if (a.target.empty()) return fail("log", Status::invalid("give STORE|MOUNTPOINT (or --user USER)"), 2);
  auto target = resolve_target(a.target);
  if (!target) return fail("log", target.status());
  oplog::Filter filter;
  const int64_t now = wall_clock_ns();
  if (!a.since.empty()) {
    auto t = parse_time(a.since, now);
    if (!t) return fail("log", t.status().with_context("--since"));
    filter.since_ns = *t;
  }
  if (!a.until.empty()) {
    auto t = parse_time(a.until, now);
    if (!t) return fail("log", t.status().with_context("--until"));
    filter.until_ns = *t;
  }
  if (!a.op.empty()) {
    filter.kind = op_kind_from_name(a.op);
    if (!filter.kind)
      return fail("log", Status::invalid("unknown operation '" + a.op +
                                         "'; one of create mknod mkdir symlink link unlink rmdir rename write "
                                         "setattr fallocate setxattr removexattr restore tmpfile copy"));
  }
  if (!a.path.empty()) filter.path = disk_path(*target, a.path);
  if (a.limit) filter.limit = a.limit;
  auto store = open_for_reading(*target);
  if (!store) return fail("log", store.status());
  auto txn = (*store)->begin_read();
  if (!txn) return fail("log", txn.status());
  if (!a.json)
    std::printf("%8s  %-23s  %-11s  %-40s  %-28s  %s\n", "SEQ", "TIME", "OP", "PATH", "BY", "DETAILS");
  auto print = [&](const OpRecord& r) {
    a.json ? print_json(r) : print_row(r);
    return true;
  };
  Status s = filter.path ? scan_path(*txn, filter, print) : oplog::scan(*txn, filter, print);
  if (!s) return fail("log", s);
  return 0;
}

}  // namespace

void add_log_command(CLI::App& app, int& exit_code) {
  auto [cmd, a] = add_command<LogArgs>(app, "log", "show the operation log of a user disk", run_log, exit_code);
  add_target_argument(cmd, a->target)->required(false);
  cmd->add_option("--user", a->user, "USER's disk, through the broker, wherever it is attached");
  add_broker_options(cmd, a->broker, false);
  cmd->add_option("--path", a->path, "only operations on this path or below it");
  cmd->add_option("--since", a->since, "only operations at or after TIME");
  cmd->add_option("--until", a->until, "only operations at or before TIME");
  cmd->add_option("--op", a->op, "only operations of this kind (create, write, rename, ...)");
  cmd->add_option("--limit", a->limit, "at most N operations");
  cmd->add_flag("--json", a->json, "one JSON object per line");
}

}  // namespace roam::ctl
