// Runs a control request (fusefs/control/protocol.h) against a disk: through
// the running roamfs's control socket when it is mounted (after flushing the
// kernel's dirty pages, so roamfs sees every write first), or directly on the
// store when it is not. And reading the figures of gc's and retention's replies.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fusefs/control/protocol.h"
#include "tools/roamctl/target.h"

namespace roam::ctl {

// The reply of a request that was carried out. Not reaching the disk and a
// request that failed (the reply's err and message) are both an error Status.
Result<control::Reply> run_control(const Target& target, const control::Request& req);
// The same on the disk that `target_arg` (STORE|MOUNTPOINT, resolve_target) names.
Result<control::Reply> run_control(const std::string& target_arg, const control::Request& req);

// Opens the store read-only for a command that reads it (log, history, df,
// scrub). A mounted disk's newest changes are in roamfs's write-ahead log,
// which a reader does not see: the running roamfs is first asked to commit
// them to LMDB (a checkpoint), after the kernel's dirty pages are flushed.
Result<std::unique_ptr<Store>> open_for_reading(const Target& target);

// The figure called `name` in `r` ("records_dropped", "max_age_ns", ...); 0 when absent.
int64_t figure(const control::Reply& r, const std::string& name);

// Prints the figures of `r` as one JSON object on a line.
void print_figures_json(const control::Reply& r);

// Prints a restore's or an undo's changes, one per line: "K PATH  WHAT" (K
// the change's kind, as `roamctl restore` documents it), or with `json` one
// object {"change","path","what"} each.
void print_changes(const std::vector<RestoreChange>& changes, bool json);

}  // namespace roam::ctl
