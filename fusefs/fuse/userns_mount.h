// Mounting a user disk for a desktop that has a user namespace of its own
// (roamfs --userns).
//
// The FUSE connection belongs to the desktop's user namespace (the kernel's
// fc->user_ns): the kernel translates the uids and gids of every request, and
// of every attribute roamfs returns, into that namespace, so the store keeps
// the ids the desktop sees (alice = 1000 on every desktop), whatever host ids
// the desktop's range maps them to. The kernel takes a connection's namespace
// from the process that creates the filesystem and wants /dev/fuse opened in
// that same namespace; so a short-lived child joins the namespace (and a mount
// namespace of its own, owned by it, which fsopen(2) needs), opens /dev/fuse,
// creates the filesystem and a detached mount of it, and hands both
// descriptors back. roamfs, still in the host's namespaces, attaches the mount
// at the mount point (from where mount propagation carries it into the
// desktop) and serves the device descriptor. Request pids stay host pids (the
// child never leaves the host's pid namespace), so the op log's comm lookup
// is unchanged.
//
// Consequences: only processes in that user namespace (or below it) can use
// the mount; the storage node's own processes, root included, get EACCES, so
// nothing on the host may stat it: fencing goes by connection (fusectl, by the
// device number in the mount table) and by killing roamfs. The child is not
// dumpable, so the desktop's root cannot ptrace it while it is in the
// namespace (nor see it: it is not in the desktop's pid namespace).
#pragma once

#include <string>

#include "base/status.h"

namespace roam {

struct UsernsMount {
  std::string userns;      // an nsfs file of a user namespace (/proc/PID/ns/user, or a bind mount of one)
  std::string mountpoint;  // a directory in the caller's mount namespace
  std::string source;      // the mount's source, e.g. "roamfs:/path/to/store"
  std::string subtype;     // the mount's type is fuse.SUBTYPE
  bool read_only = false;
};

// Mounts a new FUSE connection as above at m.mountpoint, with allow_other,
// default_permissions, nosuid, nodev, and user_id/group_id 0 (the
// namespace's root), and returns the /dev/fuse descriptor that serves it
// (close-on-exec; the caller owns it and must answer FUSE_INIT on it before
// anything can use the mount). Errors carry the failing step and its errno
// (EINVAL: m.userns is not a user namespace; EPERM: no privilege over it).
// Forks and waits for the child: call it before starting threads.
Result<int> mount_for_userns(const UsernsMount& m);

}  // namespace roam
