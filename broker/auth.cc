#include "broker/auth.h"

#include <zmq_addon.hpp>

#include <vector>

#include "protocol/curve_keys.h"

namespace roam::broker {

std::optional<Principal> Authenticator::principal(const std::string& key_hex) const {
  auto it = keys_.find(key_hex);
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

Status Authenticator::bind(zmq::context_t& ctx) {
  try {
    zap_ = zmq::socket_t(ctx, zmq::socket_type::rep);
    zap_.set(zmq::sockopt::linger, 0);
    zap_.bind("inproc://zeromq.zap.01");
    return Status::ok();
  } catch (const zmq::error_t& e) {
    return Status::error(e.num(), std::string("cannot bind the ZAP handler: ") + e.what());
  }
}

Status Authenticator::handle_one() {
  try {
    std::vector<zmq::message_t> req;
    if (!zmq::recv_multipart(zap_, std::back_inserter(req), zmq::recv_flags::dontwait)) return Status::ok();
    // version, request id, domain, address, identity, mechanism, credentials...
    std::string version = req.size() > 0 ? req[0].to_string() : "";
    std::string request_id = req.size() > 1 ? req[1].to_string() : "";
    std::string mechanism = req.size() > 5 ? req[5].to_string() : "";
    std::string key_hex;
    if (mechanism == "CURVE" && req.size() > 6 && req[6].size() == 32) key_hex = proto::to_hex(req[6].to_string_view());
    bool allowed = version == "1.0" && !key_hex.empty() && keys_.count(key_hex) != 0;
    std::vector<std::string> reply{"1.0", request_id, allowed ? "200" : "400",
                                   allowed ? "OK" : "key not allowed", allowed ? key_hex : "", ""};
    std::vector<zmq::const_buffer> parts;
    for (const auto& r : reply) parts.emplace_back(r.data(), r.size());
    (void)zmq::send_multipart(zap_, parts);
    return Status::ok();
  } catch (const zmq::error_t& e) {
    return Status::error(e.num(), std::string("ZAP handler: ") + e.what());
  }
}

}  // namespace roam::broker
