// What a running roamfs does with a control request (control/protocol.h):
// the change goes through the engine as a logged operation, then the kernel
// is told to forget the entries and inodes it changed, so every process sees
// the new state at once (roamfs lets the kernel cache for a day otherwise).
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <sys/socket.h>

#include <functional>
#include <string>

#include "fusefs/control/protocol.h"
#include "fusefs/control/server.h"
#include "fusefs/fuse/ops.h"
#include "fusefs/fuse/remote_server.h"
#include "fusefs/store/store.h"

namespace roam {

// Where a running roamfs serves its disk: the local mount (`local`, mounted
// at `mountpoint`, an absolute path) and, while a desktop is attached
// remotely, `remote`'s session; `is_open` says whether any of them has an
// inode open (GC must keep such files).
struct ServedDisk {
  fuse_session* local = nullptr;
  std::string mountpoint;
  std::function<bool(uint64_t)> is_open;
  RemoteServer* remote = nullptr;  // none without --remote-listen
};

// Runs on the control server's thread, concurrently with FUSE requests; the
// store's writer lock orders it against them. Kernel caches are invalidated
// in every session of `disk` (a remote desktop's kernel too).
//
// A restore replaces files by new inodes, and FUSE evicts an inode, with its
// cached pages, when its last dentry goes: invalidating the entry of a 1 GiB
// file costs the kernel ~30 ms of freeing pages. So before invalidating,
// the handler holds the replaced entries open (O_PATH, through the mount)
// and lets go of them after the reply: the new state is visible before the
// client has its answer, the old pages are freed after.
control::Handled handle_control(Store& store, const ServedDisk& disk, const control::Request& req,
                                const ucred& caller);

}  // namespace roam
