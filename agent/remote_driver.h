// The `remote` mount driver (docs/remote.md): the disk's roamfs runs on the
// storage node and listens for this desktop; attach mounts FUSE at the home
// here (the agent is root of the desktop's user namespace, where FUSE mounts
// are allowed) and relays every request of the desktop's kernel to that
// roamfs, and every reply and notification back (remote_relay.h),
// over ZeroMQ with CURVE (protocol/remote.h).
//
// Its "export" names the server: "tcp://ADDR:PORT#KEY", KEY the roamfs's
// public key in hex.
//
// Fencing: the broker ends the epoch's roamfs. When the relay's connection
// drops, it closes /dev/fuse, aborting the mount: every request waiting and
// every later one fails with ENOTCONN (a session never survives its
// connection), and the agent's look for fenced homes unmounts the home.
#pragma once

#include <memory>
#include <string>

#include "agent/mount_driver.h"
#include "agent/remote_relay.h"

namespace roam::agent {

std::unique_ptr<MountDriver> make_remote_driver(const DriverContext& context);

// EINVAL unless `s` is "ENDPOINT#HEXKEY".
Result<RemoteExport> parse_remote_export(const std::string& s);

}  // namespace roam::agent
