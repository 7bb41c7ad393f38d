// roamctl disk create|list: the users' disks, through the broker.
#include "tools/roamctl/broker_client.h"
#include "tools/roamctl/commands.h"

namespace roam::ctl {

void add_disk_command(CLI::App& app, int& exit_code) {
  add_broker_group(app, "disk", "user disks",
                   {{"create", "create the disk of a user", "user", request_naming<proto::DiskCreate>,
                     "created the disk of user %"},
                    {"list", "disks and where they are attached", nullptr, request_of<proto::DiskList>, ""}},
                   exit_code);
}

}  // namespace roam::ctl
