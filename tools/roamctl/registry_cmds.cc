// roamctl status, audit, desktop create|list|remove, disk create|list, user add|list:
// the broker's registry, seen and changed through the broker.
#include <memory>

#include "tools/roamctl/broker_client.h"
#include "tools/roamctl/commands.h"

namespace roam::ctl {

namespace {

// One broker command: its name, help, an optional positional name argument,
// the request it sends and what it prints when the reply has no table.
struct Spec {
  const char* name;
  const char* help;
  const char* arg;  // nullptr: none
  proto::Message (*request)(uint64_t id, const std::string& arg);
  const char* done;
};

void add(CLI::App* parent, const Spec& spec, const std::string& full_name, int& exit_code) {
  auto* cmd = parent->add_subcommand(spec.name, spec.help);
  auto args = std::make_shared<BrokerArgs>();
  auto value = std::make_shared<std::string>();
  if (spec.arg) cmd->add_option(spec.arg, *value, spec.arg)->required();
  add_broker_options(cmd, *args);
  cmd->callback([spec, full_name, args, value, &exit_code] {
    std::string done = spec.done;
    if (auto at = done.find('%'); at != std::string::npos) done.replace(at, 1, *value);
    exit_code = run_request(full_name, *args, spec.request(new_request_id(), *value), done);
  });
}

}  // namespace

void add_registry_commands(CLI::App& app, int& exit_code) {
  add(&app, {"status", "users, their disks and desktops, running switches", nullptr,
             [](uint64_t id, const std::string&) -> proto::Message { return proto::StatusRequest{id}; }, ""},
      "status", exit_code);

  add(&app, {"audit", "every switch: when, from where to where, why, the result and each step's time", nullptr,
             [](uint64_t id, const std::string&) -> proto::Message { return proto::AuditList{id, 0}; }, ""},
      "audit", exit_code);

  auto* desktop = app.add_subcommand("desktop", "desktops known to the broker");
  desktop->require_subcommand(1);
  add(desktop, {"create", "provision a new desktop", "desktop",
                [](uint64_t id, const std::string& d) -> proto::Message { return proto::DesktopCreate{id, d}; },
                "provisioning desktop %; it is usable once `roamctl desktop list` shows it connected"},
      "desktop create", exit_code);
  add(desktop, {"list", "desktops, their state and user", nullptr,
                [](uint64_t id, const std::string&) -> proto::Message { return proto::DesktopList{id}; }, ""},
      "desktop list", exit_code);
  add(desktop, {"remove", "forget a desktop with no user (and run the provisioner's remove)", "desktop",
                [](uint64_t id, const std::string& d) -> proto::Message { return proto::DesktopRemove{id, d}; },
                "removed desktop %"},
      "desktop remove", exit_code);

  auto* disk = app.add_subcommand("disk", "user disks");
  disk->require_subcommand(1);
  add(disk, {"create", "create the disk of a user", "user",
             [](uint64_t id, const std::string& u) -> proto::Message { return proto::DiskCreate{id, u}; },
             "created the disk of user %"},
      "disk create", exit_code);
  add(disk, {"list", "disks and where they are attached", nullptr,
             [](uint64_t id, const std::string&) -> proto::Message { return proto::DiskList{id}; }, ""},
      "disk list", exit_code);

  auto* user = app.add_subcommand("user", "users");
  user->require_subcommand(1);
  add(user, {"add", "add a user", "user",
             [](uint64_t id, const std::string& u) -> proto::Message { return proto::UserAdd{id, u}; },
             "added user %"},
      "user add", exit_code);
  add(user, {"list", "users, whether they have a disk, and their desktop", nullptr,
             [](uint64_t id, const std::string&) -> proto::Message { return proto::UserList{id}; }, ""},
      "user list", exit_code);
}

}  // namespace roam::ctl
