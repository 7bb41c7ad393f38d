// Who may talk to the broker: the ZAP handler for CURVE, and the principal
// behind each authenticated connection.
//
// libzmq asks the ZAP handler (a REP socket at inproc://zeromq.zap.01 in the
// broker's context) about every CURVE handshake. Keys listed in the broker's
// configuration, or enrolled by its provisioner, are accepted and their hex
// public key becomes the connection's User-Id; any other key is refused, and
// a client without CURVE never completes the handshake.
#pragma once

#include <zmq.hpp>

#include <map>
#include <optional>
#include <string>

#include "base/status.h"

namespace roam::broker {

struct Principal {
  enum class Role { kOperator, kAgent } role = Role::kAgent;
  std::string desktop;  // for agents: the only desktop this key may speak for
};

class Authenticator {
 public:
  // key_hex -> principal; replaces any previous entry for the key.
  void allow(const std::string& key_hex, Principal p) { keys_[key_hex] = std::move(p); }
  void revoke(const std::string& key_hex) { keys_.erase(key_hex); }
  std::optional<Principal> principal(const std::string& key_hex) const;

  // Binds the ZAP endpoint on `ctx`; call before the ROUTER binds.
  Status bind(zmq::context_t& ctx);
  zmq::socket_t& socket() { return zap_; }
  // Answers one waiting ZAP request, if any.
  Status handle_one();

 private:
  std::map<std::string, Principal> keys_;
  zmq::socket_t zap_;
};

}  // namespace roam::broker
