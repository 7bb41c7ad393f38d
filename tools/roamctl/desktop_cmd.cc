// roamctl desktop create|list|remove: the desktops the broker knows.
#include "tools/roamctl/broker_client.h"
#include "tools/roamctl/commands.h"

namespace roam::ctl {

void add_desktop_command(CLI::App& app, int& exit_code) {
  add_broker_group(app, "desktop", "desktops known to the broker",
                   {{"create", "provision a new desktop", "desktop", request_naming<proto::DesktopCreate>,
                     "provisioning desktop %; it is usable once `roamctl desktop list` shows it connected"},
                    {"list", "desktops, their state and user", nullptr, request_of<proto::DesktopList>, ""},
                    {"remove", "forget a desktop with no user (and run the provisioner's remove)", "desktop",
                     request_naming<proto::DesktopRemove>, "removed desktop %"}},
                   exit_code);
}

}  // namespace roam::ctl
