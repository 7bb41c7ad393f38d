#include "fusefs/control/protocol.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "fusefs/store/codec.h"

namespace roam::control {

using codec::put_bytes;
using codec::put_svarint;
using codec::put_varint;

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

namespace {

void put_identity(std::string& out, const Identity& who) {
  put_varint(out, who.uid);
  put_varint(out, who.gid);
  put_varint(out, who.pid);
  put_bytes(out, who.comm);
  put_varint(out, who.groups.size());
  for (uint32_t g : who.groups) put_varint(out, g);
}

void put_as(std::string& out, const AsUser& as) {
  out.push_back(as ? 1 : 0);
  if (as) put_identity(out, *as);
}

void put_optional_bytes(std::string& out, const std::optional<std::string>& v) {
  out.push_back(v ? 1 : 0);
  if (v) put_bytes(out, *v);
}

struct RequestEncoder {
  std::string& out;
  void operator()(const RestoreCall& r) const {
    out.push_back(static_cast<char>(Kind::kRestore));
    put_bytes(out, r.path);
    out.push_back(r.at_ns ? 1 : 2);
    if (r.at_ns) put_svarint(out, *r.at_ns);
    else put_varint(out, r.before_op.value_or(0));
    out.push_back(r.to ? 1 : 0);
    if (r.to) put_bytes(out, *r.to);
    out.push_back(r.dry_run ? 1 : 0);
    put_as(out, r.as);
  }
  void operator()(const HistoryCall& r) const {
    out.push_back(static_cast<char>(Kind::kHistory));
    put_bytes(out, r.path);
    put_as(out, r.as);
  }
  void operator()(const LogCall& r) const {
    out.push_back(static_cast<char>(Kind::kLog));
    put_optional_bytes(out, r.path);
    out.push_back(r.since_ns ? 1 : 0);
    if (r.since_ns) put_svarint(out, *r.since_ns);
    put_optional_bytes(out, r.by);
    put_varint(out, r.limit);
    put_as(out, r.as);
  }
  void operator()(const UndoRestoreCall& r) const {
    out.push_back(static_cast<char>(Kind::kUndoRestore));
    put_identity(out, r.as);
  }
  void operator()(const GcCall&) const { out.push_back(static_cast<char>(Kind::kGc)); }
  void operator()(const CheckpointCall&) const { out.push_back(static_cast<char>(Kind::kCheckpoint)); }
  void operator()(const RetentionCall& r) const {
    out.push_back(static_cast<char>(Kind::kRetention));
    out.push_back(r.max_age_ns ? 1 : 0);
    if (r.max_age_ns) put_svarint(out, *r.max_age_ns);
    out.push_back(r.max_history_bytes ? 1 : 0);
    if (r.max_history_bytes) put_varint(out, *r.max_history_bytes);
    out.push_back(r.min_window_ns ? 1 : 0);
    if (r.min_window_ns) put_svarint(out, *r.min_window_ns);
  }
  void operator()(const QuotaCall& q) const {
    out.push_back(static_cast<char>(Kind::kQuota));
    out.push_back(q.quota_bytes ? 1 : 0);
    if (q.quota_bytes) put_varint(out, *q.quota_bytes);
  }
};

// A 0/1 presence byte; nullopt for anything else.
std::optional<bool> presence(codec::Reader& r) {
  const uint8_t b = r.byte();
  if (b > 1) return std::nullopt;
  return b == 1;
}

Status malformed(const char* what) { return Status::invalid(std::string("malformed ") + what + " request"); }

// At most this many supplementary groups (the kernel's NGROUPS_MAX).
constexpr uint64_t kMaxGroups = 65536;

std::optional<Identity> identity(codec::Reader& r) {
  Identity who;
  const uint64_t uid = r.varint(), gid = r.varint(), pid = r.varint();
  if (uid > UINT32_MAX || gid > UINT32_MAX || pid > UINT32_MAX) return std::nullopt;
  who.uid = static_cast<uint32_t>(uid);
  who.gid = static_cast<uint32_t>(gid);
  who.pid = static_cast<uint32_t>(pid);
  who.comm = std::string(r.bytes());
  const uint64_t n = r.varint();
  if (n > kMaxGroups) return std::nullopt;
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    const uint64_t g = r.varint();
    if (g > UINT32_MAX) return std::nullopt;
    who.groups.push_back(static_cast<uint32_t>(g));
  }
  return who;
}

// A presence byte and, when 1, an identity; false when malformed.
bool as_user(codec::Reader& r, AsUser& out) {
  const auto has = presence(r);
  if (!has) return false;
  if (!*has) return true;
  out = identity(r);
  return out.has_value();
}

bool optional_bytes(codec::Reader& r, std::optional<std::string>& out) {
  const auto has = presence(r);
  if (!has) return false;
  if (*has) out = std::string(r.bytes());
  return true;
}

Result<Request> decode_history(codec::Reader& r) {
  HistoryCall c;
  c.path = std::string(r.bytes());
  if (!as_user(r, c.as)) return malformed("history");
  return Request{std::move(c)};
}

Result<Request> decode_log(codec::Reader& r) {
  LogCall c;
  if (!optional_bytes(r, c.path)) return malformed("log");
  const auto has_since = presence(r);
  if (!has_since) return malformed("log");
  if (*has_since) c.since_ns = r.svarint();
  if (!optional_bytes(r, c.by)) return malformed("log");
  c.limit = r.varint();
  if (!as_user(r, c.as)) return malformed("log");
  return Request{std::move(c)};
}

Result<Request> decode_undo_restore(codec::Reader& r) {
  auto who = identity(r);
  if (!who) return malformed("undo-restore");
  return Request{UndoRestoreCall{std::move(*who)}};
}

Result<Request> decode_restore(codec::Reader& r) {
  RestoreCall c;
  c.path = std::string(r.bytes());
  const uint8_t by = r.byte();
  if (by == 1) c.at_ns = r.svarint();
  else if (by == 2) c.before_op = r.varint();
  else return malformed("restore");
  const auto has_to = presence(r);
  if (!has_to) return malformed("restore");
  if (*has_to) c.to = std::string(r.bytes());
  const auto dry_run = presence(r);
  if (!dry_run) return malformed("restore");
  c.dry_run = *dry_run;
  if (!as_user(r, c.as)) return malformed("restore");
  return Request{std::move(c)};
}

Result<Request> decode_retention(codec::Reader& r) {
  RetentionCall c;
  const auto has_age = presence(r);
  if (!has_age) return malformed("retention");
  if (*has_age) c.max_age_ns = r.svarint();
  const auto has_space = presence(r);
  if (!has_space) return malformed("retention");
  if (*has_space) c.max_history_bytes = r.varint();
  const auto has_window = presence(r);
  if (!has_window) return malformed("retention");
  if (*has_window) c.min_window_ns = r.svarint();
  return Request{c};
}

Result<Request> decode_quota(codec::Reader& r) {
  QuotaCall c;
  const auto has_quota = presence(r);
  if (!has_quota) return malformed("quota");
  if (*has_quota) c.quota_bytes = r.varint();
  return Request{c};
}

}  // namespace

std::string encode(const Request& req) {
  std::string out{static_cast<char>(kVersion)};
  std::visit(RequestEncoder{out}, req);
  return out;
}

Result<Request> decode_request(std::string_view bytes) {
  codec::Reader r(bytes);
  if (r.byte() != kVersion) return Status::invalid("unknown control protocol version");
  Result<Request> req = Status::invalid("unknown control request");
  switch (static_cast<Kind>(r.byte())) {
    case Kind::kRestore: req = decode_restore(r); break;
    case Kind::kGc: req = Request{GcCall{}}; break;
    case Kind::kRetention: req = decode_retention(r); break;
    case Kind::kCheckpoint: req = Request{CheckpointCall{}}; break;
    case Kind::kQuota: req = decode_quota(r); break;
    case Kind::kHistory: req = decode_history(r); break;
    case Kind::kLog: req = decode_log(r); break;
    case Kind::kUndoRestore: req = decode_undo_restore(r); break;
  }
  if (req && (!r.ok() || !r.at_end())) return Status::invalid("malformed control request");
  return req;
}

std::string encode(const Reply& rep) {
  std::string out{static_cast<char>(kVersion)};
  put_varint(out, static_cast<uint64_t>(rep.err));
  put_bytes(out, rep.message);
  put_bytes(out, rep.moment);
  put_varint(out, rep.seq);
  put_varint(out, rep.changes.size());
  for (const auto& c : rep.changes) {
    out.push_back(static_cast<char>(c.kind));
    put_bytes(out, c.path);
    put_bytes(out, c.what);
  }
  put_varint(out, rep.figures.size());
  for (const auto& [name, value] : rep.figures) {
    put_bytes(out, name);
    put_svarint(out, value);
  }
  // Rows only when there are some, so a reply without them reads as before.
  if (!rep.rows.empty()) {
    put_varint(out, rep.rows.size());
    for (const auto& row : rep.rows) {
      put_varint(out, row.size());
      for (const auto& cell : row) put_bytes(out, cell);
    }
  }
  return out;
}

Result<Reply> decode_reply(std::string_view bytes) {
  codec::Reader r(bytes);
  if (r.byte() != kVersion) return Status::invalid("unknown control protocol version in reply");
  Reply rep;
  rep.err = static_cast<int>(r.varint());
  rep.message = std::string(r.bytes());
  rep.moment = std::string(r.bytes());
  rep.seq = r.varint();
  const uint64_t n = r.varint();
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    const char kind = static_cast<char>(r.byte());
    if (kind != '+' && kind != '-' && kind != '~') return Status::invalid("malformed reply");
    RestoreChange c{static_cast<RestoreChange::Kind>(kind), std::string(r.bytes()), std::string(r.bytes())};
    rep.changes.push_back(std::move(c));
  }
  const uint64_t figures = r.varint();
  for (uint64_t i = 0; i < figures && r.ok(); ++i) {
    std::string name(r.bytes());
    rep.figures.emplace_back(std::move(name), r.svarint());
  }
  const uint64_t rows = r.ok() && !r.at_end() ? r.varint() : 0;
  for (uint64_t i = 0; i < rows && r.ok(); ++i) {
    const uint64_t cells = r.varint();
    std::vector<std::string> row;
    for (uint64_t j = 0; j < cells && r.ok(); ++j) row.emplace_back(r.bytes());
    rep.rows.push_back(std::move(row));
  }
  if (!r.ok() || !r.at_end()) return Status::invalid("malformed reply from roamfs");
  return rep;
}

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

}  // namespace roam::control

namespace roam::control {

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
