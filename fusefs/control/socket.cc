// The control socket: where it lives, who may bind and reach it, framing,
// and one call (fusefs/control/protocol.h, docs/control-socket.md). The
// messages it carries are encoded in protocol.cc.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "fusefs/control/protocol.h"
#include "fusefs/store/codec.h"

namespace roam::control {

namespace {

Status errno_status(const std::string& what) { return Status::error(errno, what + ": " + std::strerror(errno)); }

std::string octal(unsigned mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%o", mode);
  return buf;
}

constexpr char kSocketFile[] = "socket";

// A directory opened without following a symlink, closed with the object.
class DirFd {
 public:
  explicit DirFd(int fd) : fd_(fd) {}
  ~DirFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  DirFd(const DirFd&) = delete;
  DirFd& operator=(const DirFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// The address of `dir`/socket through the open directory `dir_fd`: a path
// of fixed, short length (sun_path holds 108 bytes; a store's path may not
// fit), resolved through the directory already checked, not its name again.
sockaddr_un address_in(int dir_fd, socklen_t& len) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const int n = std::snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", dir_fd, kSocketFile);
  len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + static_cast<size_t>(n) + 1);
  return addr;
}

// Makes `dir` if needed and opens it; EPERM unless it is a real directory
// that only this process's effective uid can enter.
Result<int> open_own_dir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return errno_status("cannot create " + dir);
  const int fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOTDIR || errno == ELOOP) return Status::error(EPERM, dir + " is not a directory of roamfs's");
    return errno_status("cannot open " + dir);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Status s = errno_status("cannot stat " + dir);
    ::close(fd);
    return s;
  }
  if (st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
    ::close(fd);
    return Status::error(EPERM, dir + " belongs to uid " + std::to_string(st.st_uid) + " with mode 0" + octal(st.st_mode & 0777) + "; only roamfs's owner may hold the control socket: remove it");
  }
  return fd;
}

}  // namespace

std::string socket_dir(const std::string& store_dir) { return store_dir + "/control"; }

Status send_frame(int fd, std::string_view payload) {
  std::string buf;
  codec::put_be64(buf, payload.size());
  buf.erase(0, 4);  // the low 4 bytes: a 32-bit big-endian length
  buf.append(payload);
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::send(fd, buf.data() + done, buf.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_status("control socket send");
    done += static_cast<size_t>(n);
  }
  return Status::ok();
}

namespace {
Status recv_all(int fd, char* p, size_t len) {
  while (len > 0) {
    ssize_t n = ::recv(fd, p, len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_status("control socket receive");
    if (n == 0) return Status::error(EPIPE, "the other side closed the control connection");
    p += n;
    len -= static_cast<size_t>(n);
  }
  return Status::ok();
}
}  // namespace

Result<std::string> recv_frame(int fd, uint32_t max) {
  unsigned char hdr[4];
  ROAM_TRY(recv_all(fd, reinterpret_cast<char*>(hdr), 4));
  const uint32_t len = (uint32_t{hdr[0]} << 24) | (uint32_t{hdr[1]} << 16) | (uint32_t{hdr[2]} << 8) | hdr[3];
  if (len > max) return Status::error(EMSGSIZE, "control message of " + std::to_string(len) + " bytes is too large");
  std::string payload(len, '\0');
  ROAM_TRY(recv_all(fd, payload.data(), len));
  return payload;
}

namespace {

// Refuses a server that is neither root nor `owner`: whoever else managed to
// listen there must not learn the request or answer in roamfs's place.
Status check_server(int fd, uid_t owner, const std::string& dir) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return errno_status("control socket credentials");
  if (cred.uid != 0 && cred.uid != owner)
    return Status::error(EACCES, "the control socket in " + dir + " is served by uid " + std::to_string(cred.uid) +
                                     ", neither root nor the disk's owner (uid " + std::to_string(owner) +
                                     "); not talking to it");
  return Status::ok();
}

}  // namespace

Status flush_mount(const std::string& mountpoint) {
  const int fd = ::open(mountpoint.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 && errno == EACCES) {
    ::sync();  // writeback needs no permission, at the price of flushing every filesystem
    return Status::ok();
  }
  if (fd < 0 || ::syncfs(fd) < 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    // A full disk or quota: some process's cached writes cannot be written
    // back (that process learns it from its own fsync or close). The flush
    // only lets the request see the latest data; what it comes to do
    // (retention, GC, a restore) is what gives the space back.
    if (fd >= 0 && (err == ENOSPC || err == EDQUOT)) return Status::ok();
    return Status::error(err, "cannot flush " + mountpoint + ": " + std::strerror(err));
  }
  ::close(fd);
  return Status::ok();
}

Result<Reply> call(const std::string& dir, uid_t owner, const Request& req, double timeout_s) {
  const int dir_fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) {
    if (errno == ENOENT) return Status::error(ECONNREFUSED, "the roamfs serving this disk has no control socket");
    return errno_status("cannot open " + dir);
  }
  DirFd dir_closer(dir_fd);
  socklen_t len = 0;
  const sockaddr_un addr = address_in(dir_fd, len);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_status("control socket");
  DirFd closer(fd);
  if (timeout_s > 0) {
    const timeval tv{static_cast<time_t>(timeout_s), static_cast<suseconds_t>((timeout_s - static_cast<double>(static_cast<time_t>(timeout_s))) * 1e6)};
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0)
      return errno_status("control socket timeout");
  }
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), len) < 0) {
    if (errno == ECONNREFUSED || errno == ENOENT)
      return Status::error(ECONNREFUSED, "the roamfs serving this disk does not answer on its control socket");
    return errno_status("connecting to roamfs");
  }
  ROAM_TRY(check_server(fd, owner, dir));
  // A refused caller is answered before its request is read, and the server
  // may close before the request is all sent: the refusal is still there to read.
  Status sent = send_frame(fd, encode(req));
  if (!sent && sent.err() != EPIPE && sent.err() != ECONNRESET) return sent;
  auto bytes = recv_frame(fd, kMaxReply);
  if (!bytes) return sent.is_ok() ? std::move(bytes).take_status() : sent;
  return decode_reply(*bytes);
}

Result<int> listen_on(const std::string& dir) {
  ROAM_ASSIGN(const int dir_fd, open_own_dir(dir));
  DirFd dir_closer(dir_fd);
  // Left by a roamfs that was killed; this one holds the store's lock.
  if (::unlinkat(dir_fd, kSocketFile, 0) != 0 && errno != ENOENT) return errno_status("cannot remove the old socket in " + dir);
  socklen_t len = 0;
  const sockaddr_un addr = address_in(dir_fd, len);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return errno_status("control socket");
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) < 0 || ::listen(fd, 16) < 0) {
    Status s = errno_status("control socket in " + dir);
    ::close(fd);
    return s;
  }
  return fd;
}

}  // namespace roam::control
