#include "protocol/transport.h"

#include <zmq_addon.hpp>

#include <chrono>
#include <vector>

namespace roam::proto {

namespace {

Status zmq_status(const zmq::error_t& e, const char* what) {
  return Status::error(e.num(), std::string(what) + ": " + e.what());
}

Status send_frames(zmq::socket_t& socket, std::vector<std::string> frames) {
  try {
    std::vector<zmq::const_buffer> parts;
    parts.reserve(frames.size());
    for (const auto& f : frames) parts.emplace_back(f.data(), f.size());
    if (!zmq::send_multipart(socket, parts, zmq::send_flags::dontwait))
      return Status::error(EAGAIN, "the peer's queue is full");
    return Status::ok();
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) return Status::error(EHOSTUNREACH, "the peer is not connected");
    return zmq_status(e, "sending a message");
  }
}

// Reads one multipart message if one is waiting.
Result<std::optional<std::vector<zmq::message_t>>> receive_parts(zmq::socket_t& socket) {
  try {
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(socket, std::back_inserter(parts), zmq::recv_flags::dontwait))
      return std::optional<std::vector<zmq::message_t>>();
    return std::optional(std::move(parts));
  } catch (const zmq::error_t& e) {
    return zmq_status(e, "receiving a message");
  }
}

Result<Message> decode_parts(const std::vector<zmq::message_t>& parts, size_t first) {
  std::vector<std::string_view> frames;
  for (size_t i = first; i < parts.size(); ++i) frames.push_back(parts[i].to_string_view());
  return decode(frames);
}

}  // namespace

Status send(zmq::socket_t& socket, const Message& m) { return send_frames(socket, encode(m)); }

Status send_routed(zmq::socket_t& router, const std::string& routing_id, const Message& m) {
  auto frames = encode(m);
  frames.insert(frames.begin(), routing_id);
  return send_frames(router, std::move(frames));
}

Result<std::optional<Result<Message>>> receive(zmq::socket_t& dealer) {
  ROAM_ASSIGN(auto parts, receive_parts(dealer));
  if (!parts) return std::optional<Result<Message>>();
  return std::optional<Result<Message>>(decode_parts(*parts, 0));
}

Result<std::optional<Routed>> receive_routed(zmq::socket_t& router) {
  ROAM_ASSIGN(auto parts, receive_parts(router));
  if (!parts) return std::optional<Routed>();
  if (parts->size() < 2) return Status::error(EPROTO, "a ROUTER message without a routing id");
  const char* user = (*parts)[1].gets("User-Id");
  return std::optional<Routed>(Routed{(*parts)[0].to_string(), user ? user : "", decode_parts(*parts, 1)});
}

void set_heartbeats(zmq::socket_t& s, const Heartbeats& hb) {
  if (hb.interval_ms <= 0) return;
  s.set(zmq::sockopt::heartbeat_ivl, hb.interval_ms);
  s.set(zmq::sockopt::heartbeat_timeout, hb.timeout_ms);
  s.set(zmq::sockopt::heartbeat_ttl, hb.timeout_ms);  // the peer, too, drops us after this long
}

Result<zmq::socket_t> connect_dealer(zmq::context_t& ctx, const std::string& endpoint, const KeyPair& client,
                                     const std::string& server_public, const Heartbeats& hb) {
  try {
    zmq::socket_t s(ctx, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    set_heartbeats(s, hb);
    s.set(zmq::sockopt::curve_serverkey, zmq::const_buffer(server_public.data(), server_public.size()));
    s.set(zmq::sockopt::curve_publickey, zmq::const_buffer(client.public_key.data(), client.public_key.size()));
    s.set(zmq::sockopt::curve_secretkey, zmq::const_buffer(client.secret_key.data(), client.secret_key.size()));
    s.connect(endpoint);
    return s;
  } catch (const zmq::error_t& e) {
    return zmq_status(e, ("connecting to " + endpoint).c_str());
  }
}

Result<Reply> call(zmq::context_t& ctx, const std::string& endpoint, const KeyPair& client,
                   const std::string& server_public, const Message& request, int timeout_ms) {
  ROAM_ASSIGN(auto socket, connect_dealer(ctx, endpoint, client, server_public));
  ROAM_TRY(send(socket, request));
  const uint64_t id = request_id_of(request);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, left);
    } catch (const zmq::error_t& e) {
      return zmq_status(e, "waiting for the broker");
    }
    ROAM_ASSIGN(auto got, receive(socket));
    if (!got) continue;
    if (!*got) return got->status();
    if (auto* reply = std::get_if<Reply>(&got->value()); reply && reply->request_id == id) return *reply;
  }
  return Status::error(ETIMEDOUT, "the broker at " + endpoint + " did not answer within " +
                                      std::to_string(timeout_ms / 1000) +
                                      " s (is it running, and is this key allowed?)");
}

Result<zmq::socket_t> bind_zap(zmq::context_t& ctx) {
  try {
    zmq::socket_t zap(ctx, zmq::socket_type::rep);
    zap.set(zmq::sockopt::linger, 0);
    zap.bind("inproc://zeromq.zap.01");
    return zap;
  } catch (const zmq::error_t& e) {
    return zmq_status(e, "cannot bind the ZAP handler");
  }
}

Status answer_zap(zmq::socket_t& zap, const std::function<bool(const std::string& key_hex)>& allowed) {
  try {
    std::vector<zmq::message_t> req;
    if (!zmq::recv_multipart(zap, std::back_inserter(req), zmq::recv_flags::dontwait)) return Status::ok();
    // version, request id, domain, address, identity, mechanism, credentials...
    std::string version = req.size() > 0 ? req[0].to_string() : "";
    std::string request_id = req.size() > 1 ? req[1].to_string() : "";
    std::string mechanism = req.size() > 5 ? req[5].to_string() : "";
    std::string key_hex;
    if (mechanism == "CURVE" && req.size() > 6 && req[6].size() == 32) key_hex = to_hex(req[6].to_string_view());
    const bool ok = version == "1.0" && !key_hex.empty() && allowed(key_hex);
    std::vector<std::string> reply{"1.0", request_id, ok ? "200" : "400", ok ? "OK" : "key not allowed",
                                   ok ? key_hex : "", ""};
    std::vector<zmq::const_buffer> parts;
    for (const auto& r : reply) parts.emplace_back(r.data(), r.size());
    (void)zmq::send_multipart(zap, parts);
    return Status::ok();
  } catch (const zmq::error_t& e) {
    return zmq_status(e, "ZAP handler");
  }
}

}  // namespace roam::proto
