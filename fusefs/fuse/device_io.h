// roamfs's own read and writev on /dev/fuse (libfuse's custom io), for two
// things libfuse 3.14 cannot do:
//
// - Negotiate FUSE_HANDLE_KILLPRIV_V2. The kernel then sets SB_NOSEC, so a
//   write(2) no longer asks for the security.capability xattr each time
//   (only until it has seen that the file has none), and a chown no longer
//   refreshes the attributes first; in exchange the filesystem takes away
//   setuid/setgid and file capabilities when the kernel says so (Fs::
//   kill_privileges). writev ORs the flag into the INIT reply when the
//   kernel offered it.
// - Pass the kernel's "kill privileges" bits of WRITE and OPEN requests to
//   their handlers: libfuse drops them (FUSE_WRITE_KILL_SUIDGID in
//   write_flags, FUSE_OPEN_KILL_SUIDGID in open_flags). read notes them for
//   the request it returns, per thread: in libfuse's loops (single- and
//   multi-threaded) the thread that reads a request is the one that
//   processes it, before it reads the next. SETATTR needs no help: libfuse
//   keeps FATTR_KILL_SUIDGID (as FUSE_SET_ATTR_KILL_SUID, the same bit).
// - Negotiate FUSE_SETXATTR_EXT, which libfuse 3.14 does not know, so that
//   SETXATTR requests carry FUSE_SETXATTR_ACL_KILL_SGID (setting an access
//   ACL by a caller outside the file's group clears setgid, the filesystem's
//   job once it enforces ACLs). read hands libfuse each such request in the
//   old layout (the 8-byte fuse_setxattr_in it parses) and notes the flag
//   for the handler.
// - Serve FUSE_TMPFILE (open with O_TMPFILE; protocol 7.37), an opcode
//   libfuse 3.14 does not know (it answers ENOSYS, and the kernel then says
//   EOPNOTSUPP to every O_TMPFILE open). Its request is a CREATE's (struct
//   fuse_create_in and a name, "/"), and so is its reply, so read hands
//   libfuse the request as a CREATE and notes for the handler that it is a
//   TMPFILE (creating_tmpfile).
//
// Installed with no splice hooks, so libfuse neither receives nor sends
// through splice (it offers the kernel no splice capability): every request
// passes through read, every reply through writev.
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <atomic>
#include <cstdint>

namespace roam {

class DeviceIo {
 public:
  // After fuse_session_mount, before the loop; returns 0 or -errno. The
  // session's userdata must be the FuseContext (fuse/ops.h) that holds this
  // object: libfuse hands it to the io callbacks.
  // `want_killpriv_v2`: negotiate FUSE_HANDLE_KILLPRIV_V2 if offered.
  int install(fuse_session* se, bool want_killpriv_v2);
  // The same on a session that is not mounted (a remote session,
  // fuse/remote_server.h): its requests are read from, and its replies
  // written to, `fd` (a SOCK_SEQPACKET socket: one packet, one message),
  // which the session then owns (fuse_session_destroy closes it).
  int install(fuse_session* se, bool want_killpriv_v2, int fd);

  // Whether the INIT reply carried FUSE_HANDLE_KILLPRIV_V2 (false until INIT).
  bool killpriv_v2() const { return killpriv_v2_.load(std::memory_order_acquire); }
  // Whether the INIT reply carried FUSE_SETXATTR_EXT: SETXATTR requests then
  // carry the 16-byte fuse_setxattr_in.
  bool setxattr_ext() const { return setxattr_ext_.load(std::memory_order_acquire); }

  // Whether the request this thread is serving is a WRITE (OPEN) of inode
  // `nodeid` that carries the kernel's kill-privileges bit.
  static bool write_kills(uint64_t nodeid);
  static bool open_kills(uint64_t nodeid);
  // Whether the request this thread is serving is a SETXATTR of inode
  // `nodeid` with FUSE_SETXATTR_ACL_KILL_SGID.
  static bool setxattr_kills_sgid(uint64_t nodeid);
  // Whether the CREATE this thread is serving in directory `parent` came from
  // the kernel as a TMPFILE: the new file gets no name.
  static bool creating_tmpfile(uint64_t parent);

 private:
  friend struct DeviceIoHooks;
  void saw_request(const void* buf, size_t len);
  // Rewrites an extended SETXATTR request in `buf` (`len` bytes) into the old
  // layout; returns its new length.
  size_t compat_setxattr(void* buf, size_t len);
  // Turns a TMPFILE request in `buf` into the CREATE libfuse knows.
  static void tmpfile_as_create(void* buf);
  ssize_t write_reply(int fd, struct iovec* iov, int count);

  bool want_killpriv_v2_ = false;
  std::atomic<uint64_t> init_unique_{0};  // the INIT request, until its reply is out
  std::atomic<bool> init_offers_v2_{false};
  std::atomic<bool> init_offers_setxattr_ext_{false};
  std::atomic<bool> killpriv_v2_{false};
  std::atomic<bool> setxattr_ext_{false};
};

}  // namespace roam
