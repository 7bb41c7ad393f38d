// What each key may do at the broker, apart from the transport (auth.h):
// the principals of the keys in the broker's configuration, and which
// requests an agent key may make.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "broker/auth.h"
#include "broker/registry.h"
#include "protocol/protocol.h"

namespace roam::broker {

// The principal of every configured key: `operator_keys` (hex), and
// `agent_keys` ("DESKTOP:HEX"). Keys come back in lower-case hex, the form
// the ZAP handler names a peer by, whatever case they were written in.
// EINVAL naming the entry for a malformed one, and for a key listed twice
// (as operator and agent, or for two desktops): one key, one principal.
Result<std::vector<std::pair<std::string, Principal>>> configured_principals(
    const std::vector<std::string>& operator_keys, const std::vector<std::string>& agent_keys);

// Whether an agent key (`who`) may make request `m` (history requests are
// checked on their own terms: Broker::handle_history): only a switch of the
// user whose disk is attached to its own desktop (a switch asked from inside
// the desktop), and only to a desktop the registry knows: an agent never
// makes the broker provision one. EPERM with the reason otherwise.
Status agent_may_request(const Registry& reg, const Principal& who, const proto::Message& m);

}  // namespace roam::broker
