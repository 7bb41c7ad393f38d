// The control socket protocol between roamctl and a running roamfs: what a request
// and a reply are, and how they travel. docs/control-socket.md is the prose
// version; keep the two together.
//
// Transport: a Unix stream socket at STORE/control/socket. roamfs makes
// STORE/control itself, mode 0700, and refuses to serve when it is anyone
// else's: only roamfs's owner (and root) can bind or reach the socket, so no
// other local user can take its place (an abstract name, used before, could
// be bound first by any user). roamfs accepts a connection only from root or
// its own uid (SO_PEERCRED), and only from a process in its own mount
// namespace: a desktop cannot control any disk. roamctl in turn talks only to
// a server whose uid is root or the store's owner. One request and one reply
// per connection.
//
// Framing: each message is a 4-byte big-endian length, then that many bytes.
// Message: byte version (1), byte kind, then the kind's fields, encoded with
// the store's codec (varints, length-prefixed bytes). Anything malformed gets
// an error reply (EINVAL) and changes nothing.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "fusefs/history/access.h"
#include "fusefs/history/restore.h"
#include "base/status.h"

namespace roam::control {

inline constexpr uint8_t kVersion = 1;
inline constexpr uint32_t kMaxRequest = 64 * 1024;
inline constexpr uint32_t kMaxReply = 256u << 20;

enum class Kind : uint8_t {
  kRestore = 1,
  kGc = 2,
  kRetention = 3,
  kCheckpoint = 4,
  kQuota = 5,
  kHistory = 6,
  kLog = 7,
  kUndoRestore = 8,
  kUndo = 9,
  kRemoteAllow = 10,
  kRemoteFence = 11,
};

// In the requests a desktop user may make (through the broker): the user
// they are made for, whose permissions narrow them (fusefs/history/access.h)
// and who is logged as the restore's caller. Absent: an operator's request,
// not narrowed, logged as the process that sent it.
using AsUser = std::optional<Identity>;

struct RestoreCall {
  std::string path;
  std::optional<int64_t> at_ns;        // exactly one of at_ns and before_op
  std::optional<uint64_t> before_op;
  std::optional<std::string> to;
  bool dry_run = false;
  AsUser as;
  bool operator==(const RestoreCall&) const = default;
};

// The versions of one path (fusefs/history/versions.h), as Reply::rows:
// seq, time (UTC), op, path, by, size after. A user sees only the versions
// they could read at the time.
struct HistoryCall {
  std::string path;
  AsUser as;
  bool operator==(const HistoryCall&) const = default;
};

// Op log records, oldest first, as Reply::rows: seq, time (UTC), op, path,
// by. `limit` keeps the newest ones. A user sees only the records of paths
// they could list (read on the parent, search on the way) just before each,
// among those newest ones.
struct LogCall {
  std::optional<std::string> path;  // this path or below
  std::optional<int64_t> since_ns;
  std::optional<std::string> by;    // only records made by a process of this name
  uint64_t limit = 0;               // 0: no limit
  AsUser as;
  bool operator==(const LogCall&) const = default;
};

// Undoes the last restore made by `as.uid` (the newest restore record with
// that caller uid): restores its path to just before it, checked like a
// restore. Undoing again redoes it (the undo is the newest restore then).
struct UndoRestoreCall {
  Identity as;
  bool operator==(const UndoRestoreCall&) const = default;
};

// Undoes one process's changes since a moment (fusefs/history/undo.h): the
// process named by its comm or by its pid, exactly one of the two. Replied
// like a restore: `moment` names the undo ("undo of evil since …"), the
// changes include one `=` line per path kept as it is, and `message` is the
// path of the logged restore (restoring it to just before `seq` undoes the
// undo). With `as`, every
// restore it makes is checked like that user's restore and it is logged as
// theirs (undo-restore undoes it).
struct UndoCall {
  std::optional<std::string> comm;
  std::optional<uint32_t> pid;
  std::optional<int64_t> since_ns;
  bool dry_run = false;
  AsUser as;
  bool operator==(const UndoCall&) const = default;
};

// Collect garbage now (fusefs/gc/gc.h).
struct GcCall {
  bool operator==(const GcCall&) const = default;
};

// Show, or change, the disk's retention (fusefs/gc/retention.h).
struct RetentionCall {
  std::optional<int64_t> max_age_ns;
  std::optional<uint64_t> max_history_bytes;
  std::optional<int64_t> min_window_ns;  // kept even under space pressure
  bool operator==(const RetentionCall&) const = default;
};

// Show, or set, the disk's quota on live data (0: none); the reply's figures
// are quota_bytes and live_bytes.
struct QuotaCall {
  std::optional<uint64_t> quota_bytes;
  bool operator==(const QuotaCall&) const = default;
};

// Commit every change so far to LMDB (Store::checkpoint), so that a reader
// that opens the store read-only (roamctl log, history, df, scrub on a mount
// point) sees all of them.
struct CheckpointCall {
  bool operator==(const CheckpointCall&) const = default;
};

// Serve the disk remotely to the desktop agent whose public key (64 hex
// digits) this is, from attachment epoch `epoch` on, and to no other
// (docs/remote.md); ESTALE for an epoch older than the current one, ENOTSUP
// when roamfs does not serve the disk remotely (--remote-listen).
struct RemoteAllowCall {
  std::string key_hex;
  uint64_t epoch = 0;
  bool operator==(const RemoteAllowCall&) const = default;
};

// Fence the remote desktop: no key is allowed, its session is dropped, and
// once the reply is sent no request of it is being served or will be.
struct RemoteFenceCall {
  bool operator==(const RemoteFenceCall&) const = default;
};

using Request = std::variant<RestoreCall, GcCall, RetentionCall, CheckpointCall, QuotaCall, HistoryCall, LogCall,
                             UndoRestoreCall, UndoCall, RemoteAllowCall, RemoteFenceCall>;

struct Reply {
  int err = 0;             // 0: done; else errno
  std::string message;     // the error, one sentence
  // restore
  std::string moment;      // the moment restored to, as named
  uint64_t seq = 0;        // the logged restore; 0 for a dry run or no change
  std::vector<RestoreChange> changes;
  // gc and retention: named figures ("records_dropped", "max_age_ns", ...)
  std::vector<std::pair<std::string, int64_t>> figures;
  // history and log: one row of cells per version or record
  std::vector<std::vector<std::string>> rows;
};

std::string encode(const Request& r);
Result<Request> decode_request(std::string_view bytes);
std::string encode(const Reply& r);
Result<Reply> decode_reply(std::string_view bytes);

// The directory holding the control socket of the store at `store_dir`.
std::string socket_dir(const std::string& store_dir);

// One framed message over a connected socket. recv fails with EMSGSIZE when
// the length exceeds `max`, and EPIPE when the peer closed first.
Status send_frame(int fd, std::string_view payload);
Result<std::string> recv_frame(int fd, uint32_t max);

// A listening socket (close-on-exec, non-blocking accept) at `dir`/socket.
// Makes `dir` (mode 0700) if it does not exist; EPERM when it is a symlink,
// not a directory, not owned by this process's effective uid, or open to
// group or others. A socket file left there is removed first: the caller
// must be the only server of `dir` (roamfs holds the store's lock).
Result<int> listen_on(const std::string& dir);

// Writes back the dirty pages of the disk mounted at `mountpoint`, so the
// kernel cannot write stale data over what a restore brings back: syncfs,
// or sync(2) when the mount refuses this process (a disk served to a
// desktop's user namespace refuses the host's processes). ENOSPC and EDQUOT
// from writeback are not errors here: the writer that filled the disk
// learns them itself, and the request may be what frees the space.
Status flush_mount(const std::string& mountpoint);

// Connects to the server at `dir`/socket, checks that it runs as root or as
// `owner` (SO_PEERCRED; EACCES, the request unsent, otherwise), sends `req`
// and waits for the reply.
// `timeout_s` > 0 bounds each send and receive (EAGAIN past it): for a
// caller that must not hang on a roamfs that does not answer (the broker).
Result<Reply> call(const std::string& dir, uid_t owner, const Request& req, double timeout_s = 0);

}  // namespace roam::control
