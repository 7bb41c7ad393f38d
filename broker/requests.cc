// roamctl's requests to the broker: registry changes, tables and switches.
#include <sys/stat.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/provisioner.h"
#include "fusefs/store/store.h"

namespace roam::broker {

namespace {

using proto::join_cells;

// The user named by a request, for the agent permission check.
const std::string* switch_user(const proto::Message& m) {
  if (auto* s = std::get_if<proto::SwitchRequest>(&m)) return &s->user;
  return nullptr;
}

}  // namespace

void Broker::handle_request(const Principal& who, const std::string& rid, const proto::Message& m) {
  const uint64_t id = proto::request_id_of(m);
  if (std::holds_alternative<proto::Reply>(m) || std::holds_alternative<proto::Detach>(m) ||
      std::holds_alternative<proto::Attach>(m))
    return reply(rid, id, Status::error(EPROTO, "the broker does not accept this message type"));
  if (who.role == Principal::Role::kAgent) {
    // An agent may only move its own user (a switch asked from inside the desktop).
    auto own = user_on_desktop(registry_, who.desktop);
    const std::string* user = switch_user(m);
    if (!user || !own || !*own || **own != *user)
      return reply(rid, id, Status::error(EPERM, "an agent key may only switch the user of its own desktop"));
  }
  if (auto* s = std::get_if<proto::SwitchRequest>(&m)) {
    Status st = switcher_->start({s->user, s->desktop, "request", s->force, Requester{rid, s->request_id}});
    if (!st) reply(rid, id, st);
    return;  // on success the switcher replies when the switch ends
  }
  Status st;
  std::vector<std::string> rows;
  if (auto* c = std::get_if<proto::DesktopCreate>(&m)) st = create_desktop(c->desktop);
  else if (auto* r = std::get_if<proto::DesktopRemove>(&m)) st = remove_desktop(r->desktop);
  else if (auto* d = std::get_if<proto::DiskCreate>(&m)) st = create_disk(d->user);
  else if (auto* u = std::get_if<proto::UserAdd>(&m)) st = add_user(u->user);
  else if (auto t = table(m); t) rows = std::move(*t);
  else st = t.status();
  reply(rid, id, st, std::move(rows));
}

Result<std::vector<std::string>> Broker::table(const proto::Message& m) {
  std::vector<std::string> rows;
  if (std::holds_alternative<proto::UserList>(m) || std::holds_alternative<proto::DiskList>(m) ||
      std::holds_alternative<proto::StatusRequest>(m)) {
    bool users = std::holds_alternative<proto::UserList>(m);
    rows.push_back(users ? join_cells({"user", "disk", "desktop"})
                         : join_cells({"user", "desktop", "epoch", "mount", "store", "switching"}));
    ROAM_ASSIGN(auto all, registry_.list(Table::kUsers));
    for (const auto& [user, row] : all) {
      ROAM_ASSIGN(auto disk, find_disk(registry_, user));
      ROAM_ASSIGN(auto att, find_attachment(registry_, user));
      std::string desktop = att ? att->desktop : "";
      if (users) {
        rows.push_back(join_cells({user, disk ? "yes" : "no", desktop}));
        continue;
      }
      if (!disk) continue;
      std::string phase;
      for (const auto& j : switcher_->describe())
        if (j[0] == user) phase = j[3] + " -> " + j[2];
      rows.push_back(join_cells({user, desktop, std::to_string(disk->epoch), att ? att->mount_point : "",
                                 disk->store, phase}));
    }
    return rows;
  }
  if (std::holds_alternative<proto::DesktopList>(m)) {
    rows.push_back(join_cells({"desktop", "state", "connected", "user"}));
    ROAM_ASSIGN(auto all, registry_.list(Table::kDesktops));
    for (const auto& [id, row] : all) {
      ROAM_ASSIGN(auto d, desktop_from_row(id, row));
      ROAM_ASSIGN(auto user, user_on_desktop(registry_, id));
      rows.push_back(join_cells({id, d.state, peers_.alive(id) ? "yes" : "no", user ? *user : ""}));
    }
    return rows;
  }
  return Status::error(EPROTO, "the broker does not accept this message type");
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
