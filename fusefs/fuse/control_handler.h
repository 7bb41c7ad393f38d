// What a running roamfs does with a control request (control/protocol.h):
// the change goes through the engine as a logged operation, then the kernel
// is told to forget the entries and inodes it changed, so every process sees
// the new state at once (roamfs lets the kernel cache for a day otherwise).
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <sys/socket.h>

#include "fusefs/control/protocol.h"
#include "fusefs/fuse/ops.h"
#include "fusefs/store/store.h"

namespace roam {

// Runs on the control server's thread, concurrently with FUSE requests; the
// store's writer lock orders it against them. `se` must be mounted.
// `open_files` keeps GC away from files that are still open.
control::Reply handle_control(Store& store, fuse_session* se, const OpenFiles& open_files,
                              const control::Request& req, const ucred& caller);

}  // namespace roam
