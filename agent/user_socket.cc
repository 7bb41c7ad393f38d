#include "agent/user_socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "protocol/local_socket.h"

namespace roam::agent {

namespace {

Status errno_status(const std::string& what) { return Status::error(errno, what + ": " + std::strerror(errno)); }

std::string read_proc(uint32_t pid, const char* file) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/" + file);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A request larger than this is not a request (path fields are 4 KiB each).
constexpr size_t kMaxRequestBytes = 64 * 1024;

// Sends one reply on a client's non-blocking connection: blocking now, for
// at most a second, so a client that does not read cannot hold up the agent.
void write_reply(int fd, const proto::Reply& reply) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  (void)proto::write_message(fd, reply);  // a client gone meanwhile loses its answer, nothing else
}

}  // namespace

std::string groups_from_status(const std::string& status) {
  std::istringstream in(status);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Groups:", 0) != 0) continue;
    std::istringstream gids(line.substr(7));
    std::string out, gid;
    while (gids >> gid) out += (out.empty() ? "" : ",") + gid;
    return out;
  }
  return "";
}

void fill_identity(proto::HistoryRequest& r, uint32_t uid, uint32_t gid, uint32_t pid) {
  r.user.clear();
  r.uid = uid;
  r.gid = gid;
  r.pid = pid;
  r.groups = groups_from_status(read_proc(pid, "status"));
  r.comm = read_proc(pid, "comm");
  while (!r.comm.empty() && r.comm.back() == '\n') r.comm.pop_back();
}

Result<UserSocket> UserSocket::listen(const std::string& path) {
  const std::string dir = path.substr(0, path.rfind('/'));
  if (!dir.empty() && ::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return errno_status("cannot create " + dir);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return Status::invalid("socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errno_status("cannot remove the old " + path);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return errno_status("socket");
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 || ::chmod(path.c_str(), 0666) != 0 ||
      ::listen(fd, 16) != 0) {
    Status s = errno_status("cannot listen at " + path);
    ::close(fd);
    return s;
  }
  return UserSocket(fd, path);
}

UserSocket::UserSocket(UserSocket&& o) noexcept
    : listen_fd_(o.listen_fd_), path_(std::move(o.path_)), clients_(std::move(o.clients_)), next_id_(o.next_id_) {
  o.listen_fd_ = -1;
  o.clients_.clear();
}

UserSocket::~UserSocket() {
  for (const auto& [fd, c] : clients_) ::close(fd);
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

std::vector<int> UserSocket::poll_fds() const {
  std::vector<int> fds{listen_fd_};
  for (const auto& [fd, c] : clients_)
    if (c.request_id == 0) fds.push_back(fd);
  return fds;
}

std::vector<proto::HistoryRequest> UserSocket::on_readable(int fd, Clock::time_point now) {
  if (fd == listen_fd_) {
    accept_one(now);
    return {};
  }
  auto it = clients_.find(fd);
  if (it == clients_.end() || it->second.request_id != 0) return {};
  auto req = read_client(fd, it->second);
  if (!req) return {};
  return {std::move(*req)};
}

void UserSocket::accept_one(Clock::time_point now) {
  const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0) return;  // EAGAIN, or a client already gone
  if (clients_.size() >= kMaxClients) {
    write_reply(fd, proto::reply_for(0, Status::error(EAGAIN, "the agent is busy; try again")));
    ::close(fd);
    return;
  }
  clients_[fd] = Client{"", 0, 0, now + kReadTimeout};
}

// Reads what the client sent; the request once it is whole. A client that
// sends something else, or too much, is answered and dropped.
std::optional<proto::HistoryRequest> UserSocket::read_client(int fd, Client& c) {
  char chunk[8192];
  const ssize_t n = ::read(fd, chunk, sizeof chunk);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return std::nullopt;
  if (n <= 0) {
    close_client(fd);
    return std::nullopt;
  }
  c.buffer.append(chunk, static_cast<size_t>(n));
  if (c.buffer.size() > kMaxRequestBytes) {
    answer(fd, 0, Status::error(EMSGSIZE, "request too large"));
    return std::nullopt;
  }
  auto parsed = proto::parse_message(c.buffer);
  if (!parsed) return std::nullopt;
  auto* r = *parsed ? std::get_if<proto::HistoryRequest>(&parsed->value()) : nullptr;
  if (!r) {
    answer(fd, 0, *parsed ? Status::error(EPROTO, "the agent takes history requests only") : parsed->status());
    return std::nullopt;
  }
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    answer(fd, r->request_id, Status::error(EACCES, "cannot tell who is calling"));
    return std::nullopt;
  }
  proto::HistoryRequest out = *r;
  fill_identity(out, cred.uid, cred.gid, static_cast<uint32_t>(cred.pid));
  c.client_id = r->request_id;
  c.request_id = out.request_id = next_id_++;
  c.deadline = Clock::now() + kReplyTimeout;
  c.buffer.clear();
  return out;
}

bool UserSocket::on_reply(const proto::Reply& reply) {
  for (auto& [fd, c] : clients_) {
    if (c.request_id == 0 || c.request_id != reply.request_id) continue;
    proto::Reply mine = reply;
    mine.request_id = c.client_id;
    write_reply(fd, mine);
    close_client(fd);
    return true;
  }
  return false;
}

void UserSocket::fail_waiting(const Status& why) {
  std::vector<std::pair<int, uint64_t>> waiting;
  for (const auto& [fd, c] : clients_)
    if (c.request_id != 0) waiting.emplace_back(fd, c.client_id);
  for (const auto& [fd, id] : waiting) answer(fd, id, why);
}

void UserSocket::on_interval(Clock::time_point now) {
  std::vector<std::pair<int, uint64_t>> late;
  for (const auto& [fd, c] : clients_)
    if (now >= c.deadline) late.emplace_back(fd, c.client_id);
  for (const auto& [fd, id] : late) answer(fd, id, Status::error(ETIMEDOUT, "no answer in time"));
}

void UserSocket::answer(int fd, uint64_t client_id, const Status& s) {
  write_reply(fd, proto::reply_for(client_id, s));
  close_client(fd);
}

void UserSocket::close_client(int fd) {
  ::close(fd);
  clients_.erase(fd);
}

}  // namespace roam::agent
