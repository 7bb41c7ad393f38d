// The roamdisk broker protocol: every constant and message type shared by
// roam-broker, roam-agent and roamctl. The wire format is described in
// docs/broker-protocol.md; this header and that document change together.
//
// A message is one ZeroMQ multipart message:
//   frame 0   kMagic ("ROAM1": protocol and version)
//   frame 1   one byte, the MessageType
//   frame 2.. the fields of that type, in the order of its struct below
// decode() turns frames into exactly one typed Message or an error Status;
// it never throws and never reads outside the frames it is given.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/status.h"

namespace roam::proto {

inline constexpr std::string_view kMagic = "ROAM1";

// Limits a decoder enforces before looking at any field.
inline constexpr size_t kMaxFrames = 65536;           // a Reply's rows included (bound_rows)
inline constexpr size_t kMaxFieldBytes = 4096;        // a Text, Path or row frame
inline constexpr size_t kMaxNameBytes = 64;           // user, desktop ids
inline constexpr size_t kMaxMessageBytes = 1 << 20;   // all frames together

// Timing (milliseconds). Agents and the broker send a Heartbeat every
// kHeartbeatIntervalMs when they have nothing else to send. Each side keeps a
// liveness counter reset by any message from the other and decremented every
// interval without one; at zero the peer is presumed dead (Paranoid Pirate).
inline constexpr int kHeartbeatIntervalMs = 500;
inline constexpr int kAgentBrokerLiveness = 6;   // the agent reconnects after 3 s of silence
inline constexpr int kReconnectInitialMs = 250;  // agent reconnect backoff, doubled per try
inline constexpr int kReconnectMaxMs = 8000;

// Separates the cells of one Reply row or registry row (escaped inside a cell: join_cells).
inline constexpr char kCellSeparator = '\x1f';

enum class MessageType : uint8_t {
  // agent -> broker
  kRegister = 1,
  kHeartbeat = 2,  // both directions
  kDamage = 3,
  kDetachDone = 4,
  kAttachDone = 5,
  // broker -> agent
  kDetach = 6,
  kAttach = 7,
  // roamctl (or an agent) -> broker
  kSwitchRequest = 8,
  kStatusRequest = 9,
  kDesktopCreate = 10,
  kDesktopRemove = 11,
  kDesktopList = 12,
  kDiskCreate = 13,
  kDiskList = 14,
  kUserAdd = 15,
  kUserList = 16,
  // broker -> roamctl
  kReply = 17,
  // roamctl -> broker (added after the first release of the protocol: new
  // types only ever take the next number)
  kAuditList = 18,
  kDiskQuota = 19,
  // agent (for a user of its desktop) or roamctl (for any user) -> broker
  kHistoryRequest = 20,
};

// How one field is checked on decode.
enum class FieldKind : uint8_t {
  kName,   // 1..kMaxNameBytes of [A-Za-z0-9_.-], not starting with '.' or '-'
  kPath,   // absolute path, printable, no "/../" component, <= kMaxFieldBytes
  kU64,    // decimal, 1..20 digits, no sign, fits in uint64_t
  kBool,   // "0" or "1"
  kText,   // any bytes except NUL, <= kMaxFieldBytes
  kRows,   // the rest of the frames, each a Text; must be the last field
  kDriver,  // a mount driver's name: kMountDriverBind or kMountDriverRemote
  kExport,  // a kPath, or a remote export "tcp://HOST:PORT#KEY" (valid_remote_export)
};

// The mount drivers an agent may name in its Register (agent/mount_driver.h).
inline constexpr std::string_view kMountDriverBind = "bind";
inline constexpr std::string_view kMountDriverRemote = "remote";

// Reply codes are errno values (0 = success), so a Status crosses the wire as
// (code, message) and comes back as the same Status.

// `mount_driver` is optional on the wire (added after the first release):
// an agent that does not send it uses bind mounts.
struct Register { std::string desktop; std::string mount_driver = std::string(kMountDriverBind); };
struct Heartbeat {};
struct Damage { std::string reason; };
struct DetachDone { uint64_t request_id = 0; uint64_t code = 0; std::string message; };
struct AttachDone { uint64_t request_id = 0; uint64_t code = 0; std::string message; };
// Unmount the user's home; with `force`, processes still holding files under
// it get SIGTERM, then SIGKILL after grace_ms; without, the detach is refused.
struct Detach { uint64_t request_id = 0; std::string user; bool force = true; uint64_t grace_ms = 0; };
// Mount `export_path` at the user's home: a host path visible in the desktop
// (bind), or where the disk's roamfs listens, "tcp://HOST:PORT#KEY" (remote;
// an empty HOST is the host of the broker endpoint the agent connected to).
struct Attach { uint64_t request_id = 0; std::string user; std::string export_path; };
struct SwitchRequest { uint64_t request_id = 0; std::string user; std::string desktop; bool force = true; };
struct StatusRequest { uint64_t request_id = 0; };
struct DesktopCreate { uint64_t request_id = 0; std::string desktop; };
struct DesktopRemove { uint64_t request_id = 0; std::string desktop; };
struct DesktopList { uint64_t request_id = 0; };
struct DiskCreate { uint64_t request_id = 0; std::string user; };
struct DiskList { uint64_t request_id = 0; };
struct UserAdd { uint64_t request_id = 0; std::string user; };
struct UserList { uint64_t request_id = 0; };
// The audit records of the last `limit` switches (0: all), oldest first.
struct AuditList { uint64_t request_id = 0; uint64_t limit = 0; };
// Set the quota on live data of a user's disk (0: none); kept in its store.
struct DiskQuota { uint64_t request_id = 0; std::string user; uint64_t bytes = 0; };
// A request on the history of a user's disk (docs/broker-protocol.md,
// "Requests on a disk's history"). `command` is history, log, restore,
// undo-restore or undo; the fields it does not use are empty (0 for numbers).
// From an agent: `user` is empty (the disk is the one attached to the
// agent's desktop) and uid..comm are the caller's, as the agent read them
// (SO_PEERCRED, /proc/PID/status); roamfs narrows the request to that uid's
// permissions. From roamctl: `user` names the disk and uid..comm are
// ignored (an operator's request is not narrowed).
struct HistoryRequest {
  uint64_t request_id = 0;
  std::string user;     // text: empty, or a name
  uint64_t uid = 0;
  uint64_t gid = 0;
  std::string groups;   // supplementary gids, decimal, comma-separated
  uint64_t pid = 0;
  std::string comm;
  std::string command;  // name
  std::string path;     // a path inside the disk ("/a/b"); text: empty for a log of everything
  std::string at;       // restore --at: a TIME (base/timefmt.h), read by the broker
  uint64_t before_op = 0;  // restore --before-op; 0: not given
  std::string to;       // restore --to
  std::string since;    // log --since: a TIME
  std::string by;       // log, undo --by: a process name
  uint64_t limit = 0;   // log: at most this many (the newest); 0: the broker's default
  bool dry_run = false;
  uint64_t by_pid = 0;  // undo --pid: a process id; 0: not given
};
// rows[0] is the column header when the reply is a table; cells are joined
// with kCellSeparator.
struct Reply { uint64_t request_id = 0; uint64_t code = 0; std::string message; std::vector<std::string> rows; };

using Message = std::variant<Register, Heartbeat, Damage, DetachDone, AttachDone, Detach, Attach,
                             SwitchRequest, StatusRequest, DesktopCreate, DesktopRemove, DesktopList,
                             DiskCreate, DiskList, UserAdd, UserList, Reply, AuditList, DiskQuota,
                             HistoryRequest>;

// The frames of `m` (magic, type, fields). Fields are not re-validated here:
// the sender is trusted to put valid values; the receiver checks them.
std::vector<std::string> encode(const Message& m);

// The one message in `frames`, fully validated (frame count, sizes, each
// field's kind). Anything else is EPROTO with a sentence naming the problem.
Result<Message> decode(const std::vector<std::string_view>& frames);

// The type tag of a message and its name ("switch-request"), for logs.
MessageType type_of(const Message& m);
std::string_view type_name(MessageType t);

// The request id a reply to `m` must carry (0 for messages that have none).
uint64_t request_id_of(const Message& m);

// Dispatch on a decoded Message: std::visit(Overloaded{[](const Register&) {...},
// ..., [](const auto&) {...}}, message).
template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

// Table rows: cells joined by kCellSeparator, and split again. A cell may
// hold any byte: NUL, kCellSeparator and the escape byte 0x1E travel as 0x1E
// and a letter ('0', 's', 'e'), so a row is always a valid text (no NUL)
// and splits into exactly the cells joined.
std::string join_cells(const std::vector<std::string>& cells);
std::vector<std::string> split_cells(std::string_view row);

// The errno a peer's code stands for: EIO for 0 or any code outside the
// range of errno values (never a truncation that could make it 0, success).
int errno_of(uint64_t code);

// Cuts a table reply's `rows` to what one message carries (kMaxFrames,
// kMaxMessageBytes, a row within kMaxFieldBytes): a row too long is cut
// short, and the rows past the limits are dropped. Returns how many were
// dropped. About 30,000 rows of 30 bytes fit.
size_t bound_rows(std::vector<std::string>& rows);

// Reply for a Status (code = errno, message = the sentence).
Reply reply_for(uint64_t request_id, const Status& s);
Status status_of(const Reply& r);

// Whether `s` is a valid kName (also used for registry keys and paths).
bool valid_name(std::string_view s);

// Whether `s` is a remote export: "tcp://HOST:PORT#KEY", HOST empty or of
// [A-Za-z0-9.-] (a name or IPv4 address) or "[...]" of hex digits, '.' and
// ':' (IPv6), PORT 1-65535 in decimal, KEY 64 hex digits.
bool valid_remote_export(std::string_view s);

}  // namespace roam::proto
