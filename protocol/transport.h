// Messages over cppzmq sockets. cppzmq reports errors by throwing
// zmq::error_t; these functions catch it and return a Status, so nothing
// above this layer sees a ZeroMQ exception.
#pragma once

#include <zmq.hpp>

#include <functional>
#include <optional>
#include <string>

#include "protocol/curve_keys.h"
#include "protocol/protocol.h"

namespace roam::proto {

// A message read from a ROUTER socket.
struct Routed {
  std::string routing_id;  // ZeroMQ's identity of the sending peer
  std::string user_id;     // what the ZAP handler said for that peer (hex public key)
  Result<Message> message; // a decode error when the frames were malformed
};

// Sends `m` on a DEALER (or, with a routing id, ROUTER) socket without
// blocking; EAGAIN when the peer's queue is full or it is unknown.
Status send(zmq::socket_t& socket, const Message& m);
Status send_routed(zmq::socket_t& router, const std::string& routing_id, const Message& m);

// Receives one message if one is waiting (nullopt otherwise). On a DEALER the
// frames are the message; on a ROUTER the first frame is the routing id.
Result<std::optional<Result<Message>>> receive(zmq::socket_t& dealer);
Result<std::optional<Routed>> receive_routed(zmq::socket_t& router);

// ZMTP heartbeats on a connection (libzmq's PING/PONG, answered by its I/O
// thread): a PING every `interval_ms`, and the connection is closed when
// nothing came back for `timeout_ms`, so that an idle peer cut off by the
// network is noticed. Zero: none.
struct Heartbeats {
  int interval_ms = 0;
  int timeout_ms = 0;
};
// Sets `hb` on `s`; new connections of `s` get them. Throws zmq::error_t.
void set_heartbeats(zmq::socket_t& s, const Heartbeats& hb);

// A DEALER socket that authenticates with `client` keys to a CURVE server
// whose public key is `server_public`, connected to `endpoint`, with
// heartbeats `hb`. Linger 0: a closed socket drops unsent messages at once.
Result<zmq::socket_t> connect_dealer(zmq::context_t& ctx, const std::string& endpoint, const KeyPair& client,
                                     const std::string& server_public, const Heartbeats& hb = {});

// One request/reply exchange with the broker on a fresh socket: sends
// `request`, waits up to timeout_ms for the Reply carrying its request id.
// ETIMEDOUT when none comes (broker down, or this key is not allowed).
Result<Reply> call(zmq::context_t& ctx, const std::string& endpoint, const KeyPair& client,
                   const std::string& server_public, const Message& request, int timeout_ms);

// Binds a ZAP handler (a REP socket at inproc://zeromq.zap.01) on `ctx`;
// call before any CURVE server socket of `ctx` binds.
Result<zmq::socket_t> bind_zap(zmq::context_t& ctx);

// Answers one waiting ZAP request on `zap`, if any: a CURVE client whose key
// `allowed` accepts (hex public key) completes its handshake, and its hex key
// becomes the User-Id of every message it sends; any other is refused.
Status answer_zap(zmq::socket_t& zap, const std::function<bool(const std::string& key_hex)>& allowed);

}  // namespace roam::proto
