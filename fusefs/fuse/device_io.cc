#include "fusefs/fuse/device_io.h"

#include <linux/fuse.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <vector>

#include "fusefs/fuse/ops.h"

namespace roam {

namespace {

// The last request this thread read from /dev/fuse: libfuse processes it on
// this thread before reading another.
struct SeenRequest {
  uint32_t opcode = 0;
  uint64_t nodeid = 0;
  bool kill = false;
};
thread_local SeenRequest t_seen;

DeviceIo& io_of(void* userdata) { return static_cast<FuseContext*>(userdata)->device_io; }

// The argument struct T right after the header, if the request holds all of
// it up to and including the field ending at `need` bytes.
template <typename T>
const T* args_of(const void* buf, size_t len, size_t need = sizeof(T)) {
  if (len < sizeof(fuse_in_header) + need) return nullptr;
  return reinterpret_cast<const T*>(static_cast<const char*>(buf) + sizeof(fuse_in_header));
}

}  // namespace

struct DeviceIoHooks {
  static ssize_t read(int fd, void* buf, size_t len, void* userdata) {
    ssize_t n = ::read(fd, buf, len);
    t_seen = {};
    if (n < static_cast<ssize_t>(sizeof(fuse_in_header))) return n;
    io_of(userdata).saw_request(buf, static_cast<size_t>(n));
    if (t_seen.opcode == FUSE_TMPFILE) DeviceIo::tmpfile_as_create(buf);
    return static_cast<ssize_t>(io_of(userdata).compat_setxattr(buf, static_cast<size_t>(n)));
  }
  static ssize_t writev(int fd, struct iovec* iov, int count, void* userdata) {
    return io_of(userdata).write_reply(fd, iov, count);
  }
};

int DeviceIo::install(fuse_session* se, bool want_killpriv_v2) {
  return install(se, want_killpriv_v2, fuse_session_fd(se));
}

int DeviceIo::install(fuse_session* se, bool want_killpriv_v2, int fd) {
  want_killpriv_v2_ = want_killpriv_v2;
  fuse_custom_io io{};
  io.read = DeviceIoHooks::read;
  io.writev = DeviceIoHooks::writev;
  // No splice_receive/splice_send: libfuse then offers the kernel no splice,
  // so every request and reply goes through the two hooks above.
  return fuse_session_custom_io(se, &io, fd);
}

bool DeviceIo::write_kills(uint64_t nodeid) {
  return t_seen.kill && t_seen.opcode == FUSE_WRITE && t_seen.nodeid == nodeid;
}

bool DeviceIo::open_kills(uint64_t nodeid) {
  return t_seen.kill && t_seen.opcode == FUSE_OPEN && t_seen.nodeid == nodeid;
}

bool DeviceIo::setxattr_kills_sgid(uint64_t nodeid) {
  return t_seen.kill && t_seen.opcode == FUSE_SETXATTR && t_seen.nodeid == nodeid;
}

bool DeviceIo::creating_tmpfile(uint64_t parent) {
  return t_seen.opcode == FUSE_TMPFILE && t_seen.nodeid == parent;
}

void DeviceIo::tmpfile_as_create(void* buf) {
  const uint32_t create = FUSE_CREATE;
  std::memcpy(static_cast<char*>(buf) + offsetof(fuse_in_header, opcode), &create, sizeof create);
}

size_t DeviceIo::compat_setxattr(void* buf, size_t len) {
  if (t_seen.opcode != FUSE_SETXATTR || !setxattr_ext_.load(std::memory_order_acquire)) return len;
  auto* x = args_of<fuse_setxattr_in>(buf, len);
  if (!x) return len;
  t_seen.kill = x->setxattr_flags & FUSE_SETXATTR_ACL_KILL_SGID;
  // Name and value move back over setxattr_flags and padding.
  char* base = static_cast<char*>(buf) + sizeof(fuse_in_header);
  const size_t tail = len - sizeof(fuse_in_header) - sizeof(fuse_setxattr_in);
  std::memmove(base + FUSE_COMPAT_SETXATTR_IN_SIZE, base + sizeof(fuse_setxattr_in), tail);
  const size_t shrink = sizeof(fuse_setxattr_in) - FUSE_COMPAT_SETXATTR_IN_SIZE;
  auto* h = static_cast<fuse_in_header*>(buf);
  h->len -= static_cast<uint32_t>(shrink);
  return len - shrink;
}

void DeviceIo::saw_request(const void* buf, size_t len) {
  fuse_in_header h;
  std::memcpy(&h, buf, sizeof h);
  t_seen.opcode = h.opcode;
  t_seen.nodeid = h.nodeid;
  switch (h.opcode) {
    case FUSE_WRITE:
      if (auto* w = args_of<fuse_write_in>(buf, len, offsetof(fuse_write_in, write_flags) + 4))
        t_seen.kill = w->write_flags & FUSE_WRITE_KILL_SUIDGID;
      break;
    case FUSE_OPEN:
      if (auto* o = args_of<fuse_open_in>(buf, len)) t_seen.kill = o->open_flags & FUSE_OPEN_KILL_SUIDGID;
      break;
    case FUSE_INIT:
      if (auto* in = args_of<fuse_init_in>(buf, len, offsetof(fuse_init_in, flags) + 4)) {
        init_offers_v2_.store(in->major == 7 && (in->flags & FUSE_HANDLE_KILLPRIV_V2), std::memory_order_relaxed);
        init_offers_setxattr_ext_.store(in->major == 7 && (in->flags & FUSE_SETXATTR_EXT), std::memory_order_relaxed);
        init_unique_.store(h.unique, std::memory_order_release);
      }
      break;
    default:
      break;
  }
}

ssize_t DeviceIo::write_reply(int fd, struct iovec* iov, int count) {
  const uint64_t init = init_unique_.load(std::memory_order_acquire);
  if (init == 0 || count < 2 || iov[0].iov_len != sizeof(fuse_out_header)) return ::writev(fd, iov, count);
  fuse_out_header out;
  std::memcpy(&out, iov[0].iov_base, sizeof out);
  if (out.unique != init) return ::writev(fd, iov, count);
  init_unique_.store(0, std::memory_order_relaxed);  // a repeated INIT (major > 7) starts over
  constexpr size_t kFlagsEnd = offsetof(fuse_init_out, flags) + sizeof(uint32_t);
  uint32_t added = 0;
  if (want_killpriv_v2_ && init_offers_v2_.load(std::memory_order_relaxed)) added |= FUSE_HANDLE_KILLPRIV_V2;
  if (init_offers_setxattr_ext_.load(std::memory_order_relaxed)) added |= FUSE_SETXATTR_EXT;
  if (out.error != 0 || added == 0 || iov[1].iov_len < kFlagsEnd) return ::writev(fd, iov, count);
  // The reply (libfuse's fuse_init_out) with the flags added, in a copy.
  std::vector<char> body(static_cast<const char*>(iov[1].iov_base),
                         static_cast<const char*>(iov[1].iov_base) + iov[1].iov_len);
  uint32_t flags;
  std::memcpy(&flags, body.data() + offsetof(fuse_init_out, flags), sizeof flags);
  flags |= added;
  std::memcpy(body.data() + offsetof(fuse_init_out, flags), &flags, sizeof flags);
  std::vector<iovec> v(iov, iov + count);
  v[1] = {body.data(), body.size()};
  ssize_t n = ::writev(fd, v.data(), count);
  if (n < 0) return n;
  killpriv_v2_.store(added & FUSE_HANDLE_KILLPRIV_V2, std::memory_order_release);
  setxattr_ext_.store(added & FUSE_SETXATTR_EXT, std::memory_order_release);
  return n;
}

}  // namespace roam
