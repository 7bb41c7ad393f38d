// The provisioner: a configured shell command that creates (or removes) a
// desktop by id. The broker does not wait for the command; it waits for the
// new desktop's agent to register (switch.h).
//
// The command runs with /bin/sh -c and these environment variables:
//   ROAM_ACTION              "create" or "remove"
//   ROAM_DESKTOP             the desktop id
//   ROAM_AGENT_KEY_FILE      (create) the key file the broker enrolled for it
//   ROAM_BROKER_ENDPOINT     (create) where the agent connects
//   ROAM_BROKER_PUBLIC_KEY   (create) the broker's public key, hex
//   ROAM_EXPORT_DIR          where the broker mounts disks for this desktop
//                            (RUN_DIR/exports/DESKTOP, see disk_server.h)
// Its output goes to LOG_FILE. Children are reaped by reap_children().
#pragma once

#include <sys/types.h>

#include <string>

#include "base/status.h"

namespace roam::broker {

struct ProvisionRequest {
  std::string command;
  std::string action;
  std::string desktop;
  std::string key_file;
  std::string broker_endpoint;
  std::string broker_public_hex;
  std::string log_file;
  std::string export_dir;
};

// Starts the command; returns its pid. ENOENT when no command is configured.
Result<pid_t> run_provisioner(const ProvisionRequest& req);

// Reaps every exited child of the broker that nobody waits for (provisioner
// runs, roamfs processes that died by themselves).
void reap_children();

}  // namespace roam::broker
