// One libfuse session serving a remote desktop (docs/remote.md): the same
// callbacks (ops.h) over the same engine as the local mount, reading
// requests from and writing replies to one end of a
// socketpair(AF_UNIX, SOCK_SEQPACKET) through DeviceIo's custom io (one
// packet is one FUSE message, as on /dev/fuse), served by libfuse's
// multi-threaded loop on a thread of its own. The RemoteServer
// (remote_server.h) owns it and relays between the other end of the
// socketpair and the desktop.
#pragma once

#include <future>
#include <string>
#include <thread>

#include "base/status.h"
#include "fusefs/fuse/ops.h"

namespace roam {

class RemoteSession {
 public:
  // `fs` and `history` (may be null) outlive the session.
  RemoteSession(Fs& fs, const MountOptions& options, HistoryDir* history, std::string key, std::string desktop);
  RemoteSession(const RemoteSession&) = delete;
  RemoteSession& operator=(const RemoteSession&) = delete;
  // Ends the loop and waits for it.
  ~RemoteSession();

  // Makes the socketpair and the libfuse session and starts the loop.
  Status start();
  // The loop ends (its readers see end of file), and replies in flight
  // fail. Any thread; returns at once.
  void end();
  // Returns once the loop has ended: no request of this session is being
  // served any more. Any thread, after end().
  void wait_ended();

  FuseContext& context() { return context_; }
  fuse_session* se() const { return se_; }
  // The relay's end of the socketpair: requests go in, replies and
  // notifications come out.
  int relay_fd() const { return relay_fd_; }
  // The desktop's public key (hex) and id, as its Hello gave them.
  const std::string& key() const { return key_; }
  const std::string& desktop() const { return desktop_; }

 private:
  FuseContext context_;
  std::string key_, desktop_;
  fuse_session* se_ = nullptr;
  int served_fd_ = -1, relay_fd_ = -1;
  bool served_fd_owned_by_session_ = false;
  std::promise<void> ended_;
  std::shared_future<void> ended_future_ = ended_.get_future().share();
  std::thread loop_;
};

}  // namespace roam
