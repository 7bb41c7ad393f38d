// What a running roamfs does with a control request (control/protocol.h):
// the change goes through the engine as a logged operation, then the kernel
// is told to forget the entries and inodes it changed, so every process sees
// the new state at once (roamfs lets the kernel cache for a day otherwise).
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <sys/socket.h>

#include <string>

#include "fusefs/control/protocol.h"
#include "fusefs/control/server.h"
#include "fusefs/fuse/ops.h"
#include "fusefs/store/store.h"

namespace roam {

// Runs on the control server's thread, concurrently with FUSE requests; the
// store's writer lock orders it against them. `se` must be mounted at
// `mountpoint` (an absolute path). `open_files` keeps GC away from files that
// are still open.
//
// A restore replaces files by new inodes, and FUSE evicts an inode, with its
// cached pages, when its last dentry goes: invalidating the entry of a 1 GiB
// file costs the kernel ~30 ms of freeing pages. So before invalidating,
// the handler holds the replaced entries open (O_PATH, through the mount)
// and lets go of them after the reply: the new state is visible before the
// client has its answer, the old pages are freed after.
control::Handled handle_control(Store& store, fuse_session* se, const std::string& mountpoint,
                                const OpenFiles& open_files, const control::Request& req, const ucred& caller);

}  // namespace roam
