// roamctl audit: the broker's record of every switch.
#include "tools/roamctl/broker_client.h"
#include "tools/roamctl/commands.h"

namespace roam::ctl {

void add_audit_command(CLI::App& app, int& exit_code) {
  add_broker_command(app,
                     {"audit", "every switch: when, from where to where, why, the result and each step's time",
                      nullptr, request_of<proto::AuditList>, ""},
                     exit_code);
}

}  // namespace roam::ctl
