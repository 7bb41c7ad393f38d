// roamfs serving its disk to one remote desktop (docs/remote.md): the
// desktop's kernel talks FUSE to /dev/fuse there, its agent relays each
// request over ZeroMQ with CURVE (protocol/remote.h), and here each request
// is served by a second libfuse session over the same engine (`Fs`) and op
// log as the local mount's.
//
// A RemoteSession (remote_session.h) is one such libfuse session. A new
// desktop mount (a Hello, then its kernel's INIT) gets a new session; a
// fence or the desktop's End drops it.
//
// The RemoteServer owns one thread, the relay: it alone uses the ZeroMQ
// sockets (a CURVE server ROUTER at --remote-listen, and the ZAP handler
// that lets only the allowed desktop key complete a handshake) and the
// relay end of the socketpair. Every message is checked before it goes on:
// its sender's key (the User-Id libzmq attaches to each message) must be
// the key allowed now, so after a fence nothing from the old desktop reaches
// the engine even on a connection made before; the frame must be a
// well-formed request roamfs serves (proto::remote::validate_request); the
// file handles it names must be this session's (proto::remote::HandleGuard).
// Requests that fail get an error reply and never reach libfuse.
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "base/status.h"
#include "fusefs/fuse/ops.h"
#include "protocol/curve_keys.h"

namespace roam {

class RemoteSession;

class RemoteServer {
 public:
  struct Config {
    std::string listen;       // tcp://ADDR:PORT
    proto::KeyPair keys;      // roamfs's CURVE server keys
    std::string allowed_key;  // hex public key of the desktop allowed now; empty: none
    uint64_t epoch = 0;       // the attachment epoch that key was allowed in
    MountOptions options;     // as the local session's
    HistoryDir* history = nullptr;
  };

  // Binds and starts the relay thread. `fs` outlives the server.
  static Result<std::unique_ptr<RemoteServer>> start(Fs& fs, Config cfg);
  // Stops the relay and drops the session (joins both).
  ~RemoteServer();
  RemoteServer(const RemoteServer&) = delete;
  RemoteServer& operator=(const RemoteServer&) = delete;

  // Allows `key_hex` (and only it) from `epoch` on, dropping the session of
  // any other key. An epoch older than the current one is refused (ESTALE).
  // Thread-safe.
  Status allow(const std::string& key_hex, uint64_t epoch);
  // Allows no key: the session is dropped, and every later request of the
  // fenced desktop is answered ENOTCONN without reaching the engine.
  // Thread-safe. Returns once no request of the session is being served:
  // nothing the old desktop sends from then on reaches the store or the log.
  void fence();

  // Asks the attached desktop to write back what its kernel caches of the
  // disk (kSync: a syncfs of the home there) and waits for its kSynced, so
  // that a restore that follows is not overwritten by dirty pages written
  // back after it. OK at once when no desktop is attached, and when the
  // session ends meanwhile (its kernel has nothing more to send); ETIMEDOUT
  // when the desktop has not answered within `timeout` (stopped, cut off,
  // or an agent that predates kSync). Any thread but the relay's; takes mu_.
  Status sync_desktop(std::chrono::milliseconds timeout);

  // Calls `fn` with the current session's libfuse session (for kernel cache
  // notifications), if a desktop is attached; the session stays alive
  // during the call. Thread-safe.
  void with_session(const std::function<void(fuse_session*)>& fn);
  // Whether the remote session has inode `ino` open. Thread-safe.
  bool is_open(uint64_t ino);

 private:
  RemoteServer(Fs& fs, Config cfg);
  void relay();
  // The relay's steps, on its thread only.
  void read_peers();
  void on_message(const std::string& routing_id, const std::string& user_id, std::string_view meta,
                  std::string_view payload);
  void open_session(const std::string& routing_id, const std::string& key, const std::string& desktop);
  void on_request(const std::string& routing_id, const std::string& comm, std::string_view request);
  void pass_replies(RemoteSession& s);
  // Passes the waiting requests to the session's socket while it has room.
  void pass_requests(RemoteSession& s);
  void answer(const std::string& routing_id, std::string_view request, int err);
  // Sends the kSyncs sync_desktop asked for since the last call; counts a kSynced.
  void send_syncs();
  void synced();
  void send_fuse(const std::string& routing_id, std::string_view message);
  bool allowed(const std::string& key_hex);
  std::shared_ptr<RemoteSession> current();
  void set_current(std::shared_ptr<RemoteSession> s);
  // Drops the session if it is still `which` (another may have replaced it).
  void drop_session(const RemoteSession* which);

  struct Relay;  // the ZeroMQ sockets and the relay's own state (remote_server.cc)
  Fs& fs_;
  Config cfg_;
  std::unique_ptr<Relay> relay_state_;
  std::mutex mu_;  // guards cfg_.allowed_key, cfg_.epoch, session_, syncs_asked_, syncs_done_
  std::shared_ptr<RemoteSession> session_;
  // sync_desktop's tickets: asked (by any thread) and answered by the
  // current session's desktop. A new session starts with both equal.
  uint64_t syncs_asked_ = 0, syncs_done_ = 0;
  std::condition_variable synced_cv_;  // syncs_done_ grew, or session_ changed
  int wake_fd_ = -1;  // eventfd: allow/fence/stop reached the relay
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace roam
