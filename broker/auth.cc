#include "broker/auth.h"

#include "protocol/transport.h"

namespace roam::broker {

std::optional<Principal> Authenticator::principal(const std::string& key_hex) const {
  auto it = keys_.find(key_hex);
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

Status Authenticator::bind(zmq::context_t& ctx) {
  ROAM_ASSIGN(zap_, proto::bind_zap(ctx));
  return Status::ok();
}

Status Authenticator::handle_one() {
  return proto::answer_zap(zap_, [this](const std::string& key_hex) { return keys_.count(key_hex) != 0; });
}

}  // namespace roam::broker
