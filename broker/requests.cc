// roamctl's requests to the broker: registry changes, tables and switches.
#include <sys/stat.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/policy.h"
#include "broker/provisioner.h"
#include "base/timefmt.h"
#include "fusefs/control/execute.h"
#include "fusefs/gc/retention.h"
#include "fusefs/store/store.h"

namespace roam::broker {

using proto::join_cells;

namespace {

// What `roamctl status` says of a disk's space: its quota and live data,
// and whether space pressure has dropped history (docs/gc.md). Read from
// the store's last checkpoint (at most 30 s old on a mounted disk), with a
// read-only open that writes nothing, takes no lock and never waits on roamfs.
std::string space_cell(const std::string& store_dir) {
  auto store = Store::open(store_dir, {.read_only = true, .replay_wal_for_reader = false});
  if (!store) return "unreadable: " + store.status().message();
  auto txn = (*store)->begin_read();
  if (!txn) return "unreadable: " + txn.status().message();
  auto quota = txn->quota_bytes();
  auto live = txn->live_bytes();
  auto trim = load_pressure_trim(*txn);
  if (!quota || !live || !trim) return "unreadable";
  std::string cell = format_bytes(*live) + (*quota ? " of " + format_bytes(*quota) : " (no quota)");
  if (*trim)
    cell += "; history dropped for space at " + format_time_utc((*trim)->at_ns) +
            ((*trim)->kept_from_ns ? ", kept from " + format_time_utc((*trim)->kept_from_ns) : ", none kept");
  return cell;
}

}  // namespace

void Broker::handle_request(const Principal& who, const std::string& rid, const proto::Message& m) {
  const uint64_t id = proto::request_id_of(m);
  // Checked on their own terms: which disk, whose permissions, rate limits.
  if (const auto* h = std::get_if<proto::HistoryRequest>(&m)) return handle_history(who, rid, *h);
  if (who.role == Principal::Role::kAgent) {
    if (Status allowed = agent_may_request(registry_, who, m); !allowed) return reply(rid, id, allowed);
  }
  std::vector<std::string> rows;
  auto table = [&rows](Result<std::vector<std::string>> t) {
    if (!t) return t.status();
    rows = std::move(*t);
    return Status::ok();
  };
  bool reply_later = false;
  Status st = std::visit(
      proto::Overloaded{
          [&](const proto::SwitchRequest& s) {
            Status started =
                switcher_->start({s.user, s.desktop, "request", s.force, Requester{rid, s.request_id}});
            reply_later = started.is_ok();  // the switcher replies when the switch ends
            return started;
          },
          [&](const proto::DesktopCreate& c) { return create_desktop(c.desktop); },
          [&](const proto::DesktopRemove& r) { return remove_desktop(r.desktop); },
          [&](const proto::DiskCreate& d) { return create_disk(d.user); },
          [&](const proto::DiskQuota& q) { return set_disk_quota(q.user, q.bytes); },
          [&](const proto::UserAdd& u) { return add_user(u.user); },
          [&](const proto::StatusRequest&) { return table(disk_table(true)); },
          [&](const proto::DiskList&) { return table(disk_table(false)); },
          [&](const proto::UserList&) { return table(user_table()); },
          [&](const proto::DesktopList&) { return table(desktop_table()); },
          [&](const proto::AuditList& a) { return table(audit_table(a.limit)); },
          [&](const auto&) { return Status::error(EPROTO, "the broker does not accept this message type"); },
      },
      m);
  if (!reply_later) reply(rid, id, st, std::move(rows));
}

Result<std::vector<std::string>> Broker::disk_table(bool with_switches) {
  std::vector<std::string> rows{with_switches ? join_cells({"user", "desktop", "epoch", "mount", "switching", "space"})
                                              : join_cells({"user", "store", "epoch", "desktop"})};
  ROAM_ASSIGN(auto disks, registry_.list(Table::kDisks));
  for (const auto& [user, row] : disks) {
    ROAM_ASSIGN(auto disk, disk_from_row(user, row));
    ROAM_ASSIGN(auto att, find_attachment(registry_, user));
    std::string desktop = att ? att->desktop : "";
    if (!with_switches) {
      rows.push_back(join_cells({user, disk.store, std::to_string(disk.epoch), desktop}));
      continue;
    }
    std::string phase;
    for (const auto& j : switcher_->describe())
      if (j[0] == user) phase = j[3] + " -> " + j[2];
    rows.push_back(
        join_cells({user, desktop, std::to_string(disk.epoch), att ? att->mount_point : "", phase, space_cell(disk.store)}));
  }
  return rows;
}

Result<std::vector<std::string>> Broker::user_table() {
  std::vector<std::string> rows{join_cells({"user", "disk", "desktop"})};
  ROAM_ASSIGN(auto users, registry_.list(Table::kUsers));
  for (const auto& [user, row] : users) {
    ROAM_ASSIGN(auto disk, find_disk(registry_, user));
    ROAM_ASSIGN(auto att, find_attachment(registry_, user));
    rows.push_back(join_cells({user, disk ? "yes" : "no", att ? att->desktop : ""}));
  }
  return rows;
}

Result<std::vector<std::string>> Broker::desktop_table() {
  std::vector<std::string> rows{join_cells({"desktop", "state", "connected", "user", "driver"})};
  ROAM_ASSIGN(auto desktops, registry_.list(Table::kDesktops));
  for (const auto& [id, row] : desktops) {
    ROAM_ASSIGN(auto d, desktop_from_row(id, row));
    ROAM_ASSIGN(auto user, user_on_desktop(registry_, id));
    rows.push_back(join_cells({id, d.state, peers_.alive(id) ? "yes" : "no", user ? *user : "", d.driver}));
  }
  return rows;
}

Result<std::vector<std::string>> Broker::audit_table(uint64_t limit) {
  std::vector<std::string> rows{join_cells({"time", "switch", "user", "from", "to", "reason", "result", "steps (ms)"})};
  ROAM_ASSIGN(auto audit, registry_.list(Table::kAudit));
  size_t first = limit != 0 && audit.size() > limit ? audit.size() - limit : 0;
  for (size_t i = first; i < audit.size(); ++i) {
    const Row& r = audit[i].second;
    if (r.size() != 8) return Status::corrupt("registry audit record " + audit[i].first + " has unexpected cells");
    int64_t ns = std::strtoll(r[0].c_str(), nullptr, 10);
    rows.push_back(join_cells({format_time_utc(ns), r[1], r[2], r[3].empty() ? "-" : r[3], r[4], r[5], r[6], r[7]}));
  }
  return rows;
}

Status Broker::add_user(const std::string& user) {
  ROAM_ASSIGN(auto existing, registry_.get(Table::kUsers, user));
  if (existing) return Status::error(EEXIST, "user " + user + " already exists");
  return registry_.put(Table::kUsers, user, {std::to_string(now_ns())});
}

Status Broker::create_disk(const std::string& user) {
  ROAM_ASSIGN(auto existing, registry_.get(Table::kUsers, user));
  if (!existing) return Status::not_found("user " + user + " does not exist (roamctl user add " + user + ")");
  ROAM_ASSIGN(auto disk, find_disk(registry_, user));
  if (disk) return Status::error(EEXIST, "user " + user + " already has a disk");
  std::string store = cfg_.state_dir + "/disks/" + user;
  ROAM_TRY(Store::create(store));
  return registry_.put(Table::kDisks, user, to_row(DiskRecord{store, 0}));
}

Status Broker::set_disk_quota(const std::string& user, uint64_t bytes) {
  ROAM_ASSIGN(auto disk, find_disk(registry_, user));
  if (!disk) return Status::not_found("user " + user + " has no disk (roamctl disk create " + user + ")");
  const control::Request call = control::QuotaCall{bytes};
  ROAM_ASSIGN(auto att, find_attachment(registry_, user));
  if (att) {
    ROAM_ASSIGN(control::Reply r, control::call(control::socket_dir(disk->store), ::geteuid(), call, 5));
    return r.err == 0 ? Status::ok() : Status::error(r.err, r.message);
  }
  ROAM_ASSIGN(auto store, Store::open(disk->store, {}));
  control::Executed done = control::execute(*store, {}, call);
  if (done.reply.err != 0) return Status::error(done.reply.err, done.reply.message);
  return store->sync();
}

Status Broker::create_desktop(const std::string& id) {
  ROAM_ASSIGN(auto d, find_desktop(registry_, id));
  if (d) return Status::error(EEXIST, "desktop " + id + " already exists");
  return provision(id);
}

Status Broker::remove_desktop(const std::string& id) {
  ROAM_ASSIGN(auto d, find_desktop(registry_, id));
  if (!d) return Status::not_found("desktop " + id + " does not exist");
  ROAM_ASSIGN(auto user, user_on_desktop(registry_, id));
  if (user) return Status::error(EBUSY, "desktop " + id + " has user " + *user + "'s disk attached; switch it first");
  for (const auto& j : switcher_->describe())
    if (j[1] == id || j[2] == id) return Status::error(EBUSY, "desktop " + id + " takes part in a running switch");
  ROAM_TRY(registry_.del(Table::kDesktops, id));
  if (!d->public_key.empty()) auth_.revoke(d->public_key);
  if (!cfg_.provisioner.empty()) {
    std::string key_file = cfg_.state_dir + "/desktops/" + id + ".key";
    (void)run_provisioner({cfg_.provisioner, "remove", id, key_file, cfg_.endpoint, "",
                           cfg_.state_dir + "/desktops/" + id + ".log", disks_.exports_dir + "/" + id});
  }
  return Status::ok();
}

}  // namespace roam::broker
