// The agent's socket for the users of its desktop (`roam`, tools/roam):
// a Unix stream socket at proto::kAgentSocketPath, mode 0666, on which each
// connection carries one proto::HistoryRequest (protocol/local_socket.h) and
// gets back one proto::Reply.
//
// Who asks is the kernel's word, not the client's: uid, gid and pid from
// SO_PEERCRED, supplementary groups from /proc/PID/status, the process name
// from /proc/PID/comm; whatever the client put in those fields, and in
// `user`, is replaced (the broker decides which disk: the one attached to
// this desktop). Requests go to the broker under request ids of the agent's
// own, so a client cannot answer for another.
//
// Nothing here blocks the agent's loop: connections are read as bytes
// arrive (poll), a client that does not send a whole request within
// kReadTimeout is dropped, and at most kMaxClients are open at once (more
// are refused with EAGAIN).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "protocol/protocol.h"

namespace roam::agent {

class UserSocket {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr auto kReadTimeout = std::chrono::seconds(5);
  static constexpr auto kReplyTimeout = std::chrono::seconds(120);
  static constexpr size_t kMaxClients = 64;

  // Listens at `path` (its directory made 0755 if missing; a socket left
  // there removed first). Errors name the step.
  static Result<UserSocket> listen(const std::string& path);
  UserSocket(UserSocket&& o) noexcept;
  UserSocket& operator=(UserSocket&&) = delete;
  UserSocket(const UserSocket&) = delete;
  ~UserSocket();

  // The descriptors to poll for input: the listening socket, then every
  // connection still being read.
  std::vector<int> poll_fds() const;
  // Accepts a connection and reads what `fd` has; returns the requests
  // complete now, with the caller's identity filled in and the agent's own
  // request ids, ready for the broker.
  std::vector<proto::HistoryRequest> on_readable(int fd, Clock::time_point now);
  // The broker's answer to request `id` (one of ours): sent to its client,
  // whose connection is then closed. False when `id` is not ours.
  bool on_reply(const proto::Reply& reply);
  // Fails every request waiting for the broker (it is gone: `why`) and drops
  // connections past their deadline.
  void fail_waiting(const Status& why);
  void on_interval(Clock::time_point now);

 private:
  struct Client {
    std::string buffer;         // bytes read so far
    uint64_t client_id = 0;     // the request id the client used
    uint64_t request_id = 0;    // ours; 0 while still reading
    Clock::time_point deadline;
  };
  explicit UserSocket(int listen_fd, std::string path) : listen_fd_(listen_fd), path_(std::move(path)) {}
  void accept_one(Clock::time_point now);
  std::optional<proto::HistoryRequest> read_client(int fd, Client& c);
  void answer(int fd, uint64_t client_id, const Status& s);
  void close_client(int fd);

  int listen_fd_ = -1;
  std::string path_;
  std::map<int, Client> clients_;
  uint64_t next_id_ = 1;
};

// The caller's identity fields of `r` (uid, gid, groups, pid, comm) as the
// kernel knows the process `pid` with credentials `uid`/`gid`.
void fill_identity(proto::HistoryRequest& r, uint32_t uid, uint32_t gid, uint32_t pid);

// The supplementary groups in a /proc/PID/status text, comma-separated
// ("" when the Groups line is empty or missing).
std::string groups_from_status(const std::string& status);

}  // namespace roam::agent
