// Runs a control request against a store: the one code path for a restore,
// whether roamfs serves it for a mounted disk or roamctl runs it on an
// unmounted store. Kernel cache invalidation is the mounted caller's part.
#pragma once

#include <functional>

#include "fusefs/control/protocol.h"
#include "fusefs/history/restore.h"

namespace roam::control {

struct Executed {
  Reply reply;           // what to tell the client (err set on failure)
  RestoreResult result;  // what changed, for cache invalidation
};

// The process that asked, as the op log records it (comm from /proc/PID/comm).
Caller process_caller(uint32_t uid, uint32_t gid, uint32_t pid);

// What the caller knows that the store does not.
struct Context {
  Caller caller;                               // who asked (logged with a restore)
  std::function<bool(uint64_t ino)> is_open;  // open files (GC keeps them); empty: none
};

// Never fails as a Result: every error becomes reply.err and reply.message.
Executed execute(Store& store, const Context& context, const Request& req);

}  // namespace roam::control
