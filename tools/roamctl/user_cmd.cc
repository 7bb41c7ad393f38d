// roamctl user add|list: the users the broker knows.
#include "tools/roamctl/broker_client.h"
#include "tools/roamctl/commands.h"

namespace roam::ctl {

void add_user_command(CLI::App& app, int& exit_code) {
  add_broker_group(app, "user", "users",
                   {{"add", "add a user", "user", request_naming<proto::UserAdd>, "added user %"},
                    {"list", "users, whether they have a disk, and their desktop", nullptr,
                     request_of<proto::UserList>, ""}},
                   exit_code);
}

}  // namespace roam::ctl
