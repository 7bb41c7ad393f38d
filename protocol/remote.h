// The remote-disk wire (docs/remote.md): how roam-agent's `remote` mount
// driver carries the FUSE requests of a desktop's kernel to the disk's roamfs
// on the storage node, and the replies and notifications back, over one
// ZeroMQ connection with CURVE (the agent a DEALER, roamfs a ROUTER).
//
// Every message is two frames: a meta frame (byte version, byte kind, then
// the kind's text) and a payload frame (a raw FUSE message, or empty).
//
//   agent -> roamfs   kHello    text: the desktop id; payload empty
//                     kRequest  text: the calling process's name (comm, as the
//                               desktop's /proc shows it); payload: one FUSE
//                               request exactly as read from /dev/fuse
//                     kEnd      the mount is gone; payload empty
//                     kSynced   the kSync asked before is done; payload empty
//   roamfs -> agent   kWelcome  the session is open; payload empty
//                     kFuse     payload: one FUSE reply or notification,
//                               written to /dev/fuse as it is
//                     kSync     write back what the desktop's kernel caches
//                               of the disk (syncfs of the home), then
//                               answer kSynced; payload empty. roamfs asks
//                               before a restore: dirty pages written back
//                               after it would land over what it restored
//
// Both ends check every frame before use (validate_request,
// validate_reply): a desktop is not trusted, and libfuse trusts whatever
// reaches it as if it came from the kernel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"

namespace roam::proto::remote {

inline constexpr uint8_t kVersion = 1;

enum class Kind : uint8_t {
  kHello = 'H',
  kRequest = 'R',
  kEnd = 'E',
  kWelcome = 'W',
  kFuse = 'F',
  kSync = 'S',
  kSynced = 'D',
};

// The largest FUSE message either way: 256 pages of data (FUSE_MAX_MAX_PAGES,
// what libfuse lets the kernel send in one WRITE) plus a page for headers
// and arguments; libfuse reads requests into a buffer of this size.
inline constexpr size_t kMaxFuseMessage = (size_t{256} << 12) + 4096;
// ZMTP heartbeats on the relay's connection, both ends: an idle desktop cut
// off from the storage node learns it within kHeartbeatTimeoutMs (its relay
// then aborts the mount, as for any lost connection), and roamfs drops the
// connection too. Answered by libzmq's I/O threads, so a busy relay or a
// long request does not miss them.
inline constexpr int kHeartbeatIntervalMs = 1000;
inline constexpr int kHeartbeatTimeoutMs = 5000;

// A process name as the kernel keeps it (TASK_COMM_LEN - 1), and a desktop id.
inline constexpr size_t kMaxComm = 15;
inline constexpr size_t kMaxDesktopId = 128;

struct Meta {
  Kind kind = Kind::kEnd;
  std::string text;  // comm for kRequest, desktop id for kHello, else empty
};

// The meta frame of `m`; its text is cut to the kind's bound.
std::string encode_meta(const Meta& m);
// EPROTO for a wrong version, an unknown kind or text past the kind's bound.
Result<Meta> decode_meta(std::string_view frame);

// Whether `frame` is one FUSE request that roamfs serves, whole and well
// formed: header length equal to the frame's, an opcode roamfs implements,
// the opcode's argument struct complete, its names NUL-terminated inside the
// frame, its data sizes inside the frame, nothing past kMaxFuseMessage;
// EFBIG for an offset or size past INT64_MAX (the kernel's largest file),
// or whose end is.
// EPROTO (with what is wrong) otherwise; ENOSYS for a well-formed request
// of an operation roamfs does not serve (answered without reaching libfuse).
// `setxattr_ext`: the session negotiated FUSE_SETXATTR_EXT (SETXATTR carries
// the 16-byte fuse_setxattr_in rather than the 8-byte compat one).
Status validate_request(std::string_view frame, bool setxattr_ext);

// Whether `frame` is one FUSE reply (unique != 0) or notification (unique 0,
// error = a notify code) whose header length equals the frame's length.
Status validate_reply(std::string_view frame);

// A FUSE reply to request `unique` carrying only the error `-err`.
std::string error_reply(uint64_t unique, int err);

}  // namespace roam::proto::remote

namespace roam::proto::remote {

// roamfs's guard over the file handles of one remote session. libfuse hands
// a request's `fh` to roamfs as it came, and roamfs's handles are pointers
// (fusefs/fuse/ops.cc): a desktop must only ever name a handle that this
// session opened, of the right kind (file or directory), on the inode it
// was opened on, and must not release it while a request on it is being
// served. The kernel keeps all of this by itself; a hostile desktop would
// not. One thread (the relay's) calls both methods.
class HandleGuard {
 public:
  // Before `request` (already validate_request'd) goes to libfuse: 0 to pass
  // it on, else the errno to answer it with (EBADF: a handle not open here;
  // EBUSY: a release while the handle is in use; EPROTO: a request id still
  // in flight, which the caller drops without an answer, since the answer
  // would go to the earlier request).
  int admit(std::string_view request);
  // For every reply libfuse sends (notifications are ignored): the request
  // is done, and an OPEN, OPENDIR or CREATE that succeeded adds its handle.
  void replied(std::string_view reply);
  size_t open_handles() const { return open_.size(); }

 private:
  struct InFlight {
    uint32_t opcode;
    uint64_t nodeid;
    std::vector<uint64_t> fhs;  // the handles it uses (busy until its reply)
  };
  struct Open {
    bool dir;
    uint64_t nodeid;
    uint32_t busy = 0;  // requests on it in flight
  };
  std::unordered_map<uint64_t, InFlight> in_flight_;  // by request id
  std::unordered_map<uint64_t, Open> open_;           // by handle
};

}  // namespace roam::proto::remote
