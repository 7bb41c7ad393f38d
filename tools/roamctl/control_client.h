// Runs a control request (fusefs/control/protocol.h) against a disk: through
// the running roamfs's control socket when it is mounted (after flushing the
// kernel's dirty pages, so roamfs sees every write first), or directly on the
// store when it is not.
#pragma once

#include "fusefs/control/protocol.h"
#include "tools/roamctl/target.h"

namespace roam::ctl {

// The reply's err/message carry the request's own failure; the Result's
// status is for not reaching the disk at all.
Result<control::Reply> run_control(const Target& target, const control::Request& req);

}  // namespace roam::ctl
