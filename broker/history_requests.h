// Requests on a disk's history (proto::HistoryRequest: `roam` in a desktop,
// through its agent, or `roamctl ... --user`): what the broker makes of one
// before it forwards it to the roamfs serving the disk's control socket
// (fusefs/control/protocol.h), and what it answers with roamfs's reply.
// Pure functions; Broker::handle_history (history_requests.cc) does the rest:
// which disk, rate limit, audit, the call.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fusefs/control/protocol.h"
#include "protocol/protocol.h"

namespace roam::broker {

// Log records a request gets when it says no --limit.
inline constexpr uint64_t kDefaultLogLimit = 1000;

// The control request for `r`. With `as` (a desktop user's request) it is
// made as that user (narrowed to their permissions, logged as them); without
// (an operator's) it is not narrowed. TIMEs are read against `now_ns`.
// EINVAL with a sentence for a command it does not know, a restore without
// exactly one of --at and --before-op, a path that is not absolute (log: or
// empty), or a TIME it cannot read.
Result<control::Request> to_control_request(const proto::HistoryRequest& r, const std::optional<Identity>& as,
                                            int64_t now_ns);

// The identity an agent put in `r` (uid, gid, groups, pid, comm). EINVAL
// for a groups list that is not comma-separated decimal gids.
Result<Identity> identity_of(const proto::HistoryRequest& r);

// The table (rows[0]: the header) and the sentence that answer `r` with
// roamfs's successful `reply`; a restore's says how to undo it, as a user
// (`for_user`: roam undo-restore) or as an operator.
struct Answer {
  std::string message;
  std::vector<std::string> rows;
};
Answer answer_for(const proto::HistoryRequest& r, const control::Reply& reply, bool for_user);

// What the audit records about `r`: "restore /thesis.odt --at -5m".
std::string describe(const proto::HistoryRequest& r);

}  // namespace roam::broker
