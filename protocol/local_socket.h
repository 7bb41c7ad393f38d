// The same messages (protocol.h) over a local stream socket: between `roam`
// in a desktop and the desktop's agent (agent/user_socket.h). A message is a
// 4-byte big-endian frame count, then each frame as a 4-byte big-endian
// length and its bytes; it is decoded (and so fully validated) by decode().
#pragma once

#include <optional>

#include "protocol/protocol.h"

namespace roam::proto {

// Where the agent listens in its desktop, for every user of the desktop.
inline constexpr std::string_view kAgentSocketPath = "/run/roam/agent.sock";

// Writes `m` to `fd` (blocking; EPIPE when the other side is gone).
Status write_message(int fd, const Message& m);

// The message at the start of `bytes`: nullopt while it is incomplete (read
// more); EPROTO as soon as a count or length goes beyond kMaxFrames or
// kMaxMessageBytes, or for a message decode() refuses.
std::optional<Result<Message>> parse_message(std::string_view bytes);

// Reads one message from `fd`, the only one the connection carries
// (blocking, or until the socket's receive timeout): parse_message's errors,
// and EPIPE when the other side closed first.
Result<Message> read_message(int fd);

}  // namespace roam::proto
