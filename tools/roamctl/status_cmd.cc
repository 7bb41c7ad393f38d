// roamctl status: the broker's users, their disks and desktops, and the
// switches under way.
#include "tools/roamctl/broker_client.h"
#include "tools/roamctl/commands.h"

namespace roam::ctl {

void add_status_command(CLI::App& app, int& exit_code) {
  add_broker_command(
      app, {"status", "users, their disks and desktops, running switches", nullptr, request_of<proto::StatusRequest>, ""},
      exit_code);
}

}  // namespace roam::ctl
