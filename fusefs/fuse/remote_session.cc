#include "fusefs/fuse/remote_session.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "fusefs/fuse/history_dir.h"
#include "protocol/remote.h"

namespace roam {

namespace {

// Room for a few of the largest messages in each direction of the
// socketpair: a datagram socket refuses a message larger than its send
// buffer (and the default is ~200 KiB, less than one 1 MiB WRITE).
constexpr int kSocketBuffer = 4 * static_cast<int>(proto::remote::kMaxFuseMessage);

void size_buffers(int fd) {
  for (int opt : {SO_SNDBUFFORCE, SO_RCVBUFFORCE})
    if (::setsockopt(fd, SOL_SOCKET, opt, &kSocketBuffer, sizeof kSocketBuffer) != 0) {
      const int plain = opt == SO_SNDBUFFORCE ? SO_SNDBUF : SO_RCVBUF;  // without CAP_NET_ADMIN: up to the sysctl
      ::setsockopt(fd, SOL_SOCKET, plain, &kSocketBuffer, sizeof kSocketBuffer);
    }
}

Status errno_status(const char* what) { return Status::error(errno, std::string(what) + ": " + std::strerror(errno)); }

}  // namespace

RemoteSession::RemoteSession(Fs& fs, const MountOptions& options, HistoryDir* history, std::string key,
                             std::string desktop)
    : context_{fs, options, {}}, key_(std::move(key)), desktop_(std::move(desktop)) {
  context_.history = history;
  context_.desktop = desktop_;  // the op log names it beside each change's caller
  context_.comms.names_are_told();
}

Status RemoteSession::start() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) return errno_status("socketpair");
  served_fd_ = fds[0], relay_fd_ = fds[1];
  size_buffers(served_fd_), size_buffers(relay_fd_);
  std::vector<std::string> argv_s = {"roamfs"};
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  fuse_args fargs = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  const fuse_lowlevel_ops& ops = context_.history ? roamfs_ops_with_history() : roamfs_ops();
  se_ = fuse_session_new(&fargs, &ops, sizeof(fuse_lowlevel_ops), &context_);
  fuse_opt_free_args(&fargs);
  if (!se_) return Status::io("cannot create a FUSE session for the remote desktop");
  context_.session = se_;
  if (int rc = context_.device_io.install(se_, context_.options.handle_killpriv_v2, served_fd_); rc != 0)
    return Status::error(-rc, "cannot hook the remote session's io");
  served_fd_owned_by_session_ = true;
  loop_ = std::thread([this] {
    serve_session(se_, false);
    ended_.set_value();
  });
  return Status::ok();
}

void RemoteSession::end() {
  if (se_) fuse_session_exit(se_);
  if (served_fd_ >= 0) ::shutdown(served_fd_, SHUT_RDWR);
}

RemoteSession::~RemoteSession() {
  end();
  if (loop_.joinable()) loop_.join();
  if (se_) fuse_session_destroy(se_);  // closes served_fd_ once installed
  if (!served_fd_owned_by_session_ && served_fd_ >= 0) ::close(served_fd_);
  if (relay_fd_ >= 0) ::close(relay_fd_);
}

void RemoteSession::wait_ended() {
  if (loop_.joinable()) ended_future_.wait();
}

}  // namespace roam
