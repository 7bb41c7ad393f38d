// What each key may do at the broker, apart from the transport (auth.h):
// which requests an agent key may make.
#pragma once

#include "broker/auth.h"
#include "broker/registry.h"
#include "protocol/protocol.h"

namespace roam::broker {

// Whether an agent key (`who`) may make request `m`: only a switch of the
// user whose disk is attached to its own desktop (a switch asked from inside
// the desktop), and only to a desktop the registry knows: an agent never
// makes the broker provision one. EPERM with the reason otherwise.
Status agent_may_request(const Registry& reg, const Principal& who, const proto::Message& m);

}  // namespace roam::broker
