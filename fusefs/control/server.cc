#include "fusefs/control/server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace roam::control {

namespace {

constexpr int kClientTimeoutSeconds = 10;

// The mount namespace a process is in ("mnt:[4026531841]"), or "" if unknown.
std::string mount_namespace(pid_t pid) {
  char buf[64] = {};
  const std::string link = pid ? "/proc/" + std::to_string(pid) + "/ns/mnt" : "/proc/self/ns/mnt";
  const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

Reply error_reply(int err, std::string message) {
  Reply r;
  r.err = err;
  r.message = std::move(message);
  return r;
}

}  // namespace

Result<std::unique_ptr<Server>> Server::start(const std::string& dir, Handler handler) {
  ROAM_ASSIGN(int listen_fd, listen_on(dir));
  const int stop_fd = ::eventfd(0, EFD_CLOEXEC);
  if (stop_fd < 0) {
    const int err = errno;
    ::close(listen_fd);
    return Status::error(err, std::string("eventfd: ") + std::strerror(err));
  }
  return std::unique_ptr<Server>(new Server(listen_fd, stop_fd, std::move(handler)));
}

Server::Server(int listen_fd, int stop_fd, Handler handler)
    : listen_fd_(listen_fd), stop_fd_(stop_fd), handler_(std::move(handler)), thread_([this] { run(); }) {}

Server::~Server() {
  const uint64_t one = 1;
  if (::write(stop_fd_, &one, sizeof one) < 0) syslog(LOG_ERR, "roamfs: control server: cannot signal stop: %s", std::strerror(errno));
  thread_.join();
  ::close(listen_fd_);
  ::close(stop_fd_);
}

void Server::run() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      syslog(LOG_ERR, "roamfs: control server: poll: %s", std::strerror(errno));
      return;
    }
    if (fds[1].revents) return;
    const int conn = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) continue;  // EAGAIN or a client that went away
    serve(conn);
    ::close(conn);
  }
}

void Server::serve(int conn) {
  timeval tv{kClientTimeoutSeconds, 0};
  ::setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  ucred cred{};
  socklen_t len = sizeof cred;
  Handled handled;
  Reply& reply = handled.reply;
  if (::getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
    reply = error_reply(EACCES, "cannot tell who is calling");
  } else if (cred.uid != 0 && cred.uid != ::geteuid()) {
    reply = error_reply(EACCES, "only root or the user running roamfs may control this disk");
  } else if (const std::string ns = mount_namespace(cred.pid); ns.empty() || ns != mount_namespace(0)) {
    // A desktop is its own mount namespace; its root must not restore or
    // collect any disk on the storage node (that goes through the broker).
    reply = error_reply(EACCES, "this disk is controlled from the storage node, not from inside a desktop");
  } else if (auto bytes = recv_frame(conn, kMaxRequest); !bytes) {
    reply = error_reply(bytes.status().err(), bytes.status().message());
  } else if (auto req = decode_request(*bytes); !req) {
    reply = error_reply(EINVAL, req.status().message());
  } else {
    handled = handler_(*req, cred);
  }
  if (Status s = send_frame(conn, encode(reply)); !s)
    syslog(LOG_WARNING, "roamfs: control server: reply not sent: %s", s.message().c_str());
  if (handled.after_reply) handled.after_reply();
}

}  // namespace roam::control
