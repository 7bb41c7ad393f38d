// roamctl disk create|list|quota: the users' disks, through the broker.
#include <memory>

#include "fusefs/gc/retention.h"
#include "tools/roamctl/broker_client.h"
#include "tools/roamctl/commands.h"

namespace roam::ctl {

namespace {

// `size` in bytes ("10G", "0"), or the exit code of a failure (printed).
Result<uint64_t> quota_of(const std::string& cmd, const std::string& size, int& exit_code) {
  auto bytes = parse_bytes(size);
  if (!bytes) exit_code = fail(cmd, bytes.status());
  return bytes;
}

proto::Message quota_request(const std::string& user, uint64_t bytes) {
  return proto::DiskQuota{new_request_id(), user, bytes};
}

std::string quota_done(const std::string& user, uint64_t bytes) {
  return "the quota of " + user + "'s disk is " + (bytes ? format_bytes(bytes) : "none");
}

// roamctl disk create USER [--quota SIZE]
void add_create_subcommand(CLI::App& group, int& exit_code) {
  auto* cmd = group.add_subcommand("create", "create the disk of a user");
  auto args = std::make_shared<BrokerArgs>();
  auto user = std::make_shared<std::string>();
  auto size = std::make_shared<std::string>();
  cmd->add_option("user", *user, "user")->required();
  cmd->add_option("--quota", *size, "limit its live data: 10G, 512M (default: none)");
  add_broker_options(cmd, *args);
  cmd->callback([args, user, size, &exit_code] {
    uint64_t bytes = 0;
    if (!size->empty()) {
      auto q = quota_of("disk create", *size, exit_code);
      if (!q) return;
      bytes = *q;
    }
    exit_code = run_request("disk create", *args, proto::DiskCreate{new_request_id(), *user},
                            "created the disk of user " + *user);
    if (exit_code == 0 && bytes)
      exit_code = run_request("disk create", *args, quota_request(*user, bytes), quota_done(*user, bytes));
  });
}

// roamctl disk quota USER SIZE: the disk's quota on live data (0: none).
void add_quota_subcommand(CLI::App& group, int& exit_code) {
  auto* cmd = group.add_subcommand("quota", "limit the live data of a user's disk (SIZE 10G, 512M, 0 = none)");
  auto args = std::make_shared<BrokerArgs>();
  auto user = std::make_shared<std::string>();
  auto size = std::make_shared<std::string>();
  cmd->add_option("user", *user, "user")->required();
  cmd->add_option("size", *size, "size")->required();
  add_broker_options(cmd, *args);
  cmd->callback([args, user, size, &exit_code] {
    auto bytes = quota_of("disk quota", *size, exit_code);
    if (bytes) exit_code = run_request("disk quota", *args, quota_request(*user, *bytes), quota_done(*user, *bytes));
  });
}

}  // namespace

void add_disk_command(CLI::App& app, int& exit_code) {
  add_broker_group(app, "disk", "user disks",
                   {{"list", "disks and where they are attached", nullptr, request_of<proto::DiskList>, ""}},
                   exit_code);
  CLI::App& group = *app.get_subcommand("disk");
  add_create_subcommand(group, exit_code);
  add_quota_subcommand(group, exit_code);
}

}  // namespace roam::ctl
