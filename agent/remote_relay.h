// The relay of the `remote` mount driver (remote_driver.h, docs/remote.md):
// one ZeroMQ connection with CURVE to the disk's roamfs, and the threads that
// carry this desktop's FUSE requests to it and its replies back.
//
// Threads: the relay thread alone uses the ZeroMQ sockets and reads
// /dev/fuse; it writes replies to /dev/fuse itself. Notifications and
// roamfs's kSync go to a second thread, the kernel side (KernelSide in
// remote_relay.cc), in order: writing an invalidation makes the kernel write
// back the dirty pages it drops, and a syncfs writes back every dirty page,
// by FUSE requests that only the relay thread reads. Done on the relay
// thread, either would wait for ever on itself.
#pragma once

#include <memory>
#include <string>

#include "agent/mount_driver.h"
#include "base/status.h"

namespace roam::agent {

// Where a disk is served: "tcp://ADDR:PORT#KEY" (remote_driver.h).
struct RemoteExport {
  std::string endpoint;    // tcp://ADDR:PORT
  std::string server_key;  // 32 raw bytes
};

// How long opening a relay waits for roamfs to open a session (its
// Welcome) before it gives up with ETIMEDOUT; a key roamfs does not allow
// never gets one.
inline constexpr int kRemoteHelloTimeoutMs = 5000;

class Relay {
 public:
  // Connects, says hello as `c.desktop`, and returns once roamfs has opened
  // a session for it; ETIMEDOUT when it does not within
  // kRemoteHelloTimeoutMs (roamfs down, or this key not allowed).
  static Result<std::unique_ptr<Relay>> open(const RemoteExport& ex, const DriverContext& c);
  // Tells roamfs the mount is gone (kEnd), stops both threads and closes
  // /dev/fuse.
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Relays between /dev/fuse (`fuse_fd`, taken) of the mount at `home` and
  // roamfs until the mount is gone or the Relay is destroyed. When the relay
  // stops for any other reason (the connection lost: roamfs ended, its epoch
  // fenced), it closes /dev/fuse, which aborts the mount: every waiting and
  // every later request fails with ENOTCONN rather than hanging.
  void start(int fuse_fd, std::string home);

  struct State;  // remote_relay.cc

 private:
  Relay();
  std::unique_ptr<State> state_;
};

}  // namespace roam::agent
