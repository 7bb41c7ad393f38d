// The FUSE boundary: libfuse low-level callbacks over the engine (engine/fs.h).
//
// Each callback decodes its request, calls one engine method and replies
// exactly once. Engine Status values become errnos here and only here; EIO
// messages (checksum mismatches, store errors) are also written to the log.
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

#include "fusefs/engine/fs.h"
#include "fusefs/fuse/device_io.h"

namespace roam {

struct MountOptions {
  static constexpr double kDaySeconds = 24 * 60 * 60;
  // roamfs is the only writer of its store, so the kernel may trust cached
  // entries and attributes for long (a day); changes made behind its back
  // (restore) invalidate them explicitly.
  double entry_timeout = kDaySeconds;
  double attr_timeout = kDaySeconds;
  double negative_timeout = kDaySeconds;
  bool writeback_cache = true;
  bool read_only = false;
  // Negotiate FUSE_HANDLE_KILLPRIV_V2 (fuse/device_io.h): roamfs, not the
  // kernel, takes away setuid/setgid and capabilities on write, truncate
  // and chown, and the kernel stops asking for security.capability before
  // every write.
  bool handle_killpriv_v2 = true;
  // The kernel enforces POSIX ACLs (FUSE_CAP_POSIX_ACL) kept in the
  // system.posix_acl_* xattrs, and leaves the umask to roamfs
  // (FUSE_CAP_DONT_MASK), which applies it only where no default ACL does.
  bool posix_acl = true;
};

// Process names by pid, read from /proc/PID/comm and kept for a second, so a
// burst of operations from one process does not read /proc for each. A
// remote session's pids are a desktop's, not this host's: its names are
// told (the agent sends each request's, fuse/remote_server.h), never read.
class CommCache {
 public:
  std::string comm_of(uint32_t pid);
  // From now on names come only from tell(); an unknown pid has "".
  void names_are_told() { told_only_ = true; }
  void tell(uint32_t pid, std::string comm);

 private:
  bool told_only_ = false;  // set before the session serves, never after
  struct Entry {
    std::string comm;
    std::chrono::steady_clock::time_point read_at;
  };
  std::mutex mu_;
  std::unordered_map<uint32_t, Entry> entries_;
};

// The inodes that have open file handles. A removed file that a process still
// has open must not be freed by GC (fusefs/gc), however old its history.
class OpenFiles {
 public:
  void opened(uint64_t ino) {
    std::lock_guard lock(mu_);
    ++count_[ino];
  }
  void closed(uint64_t ino) {
    std::lock_guard lock(mu_);
    if (auto it = count_.find(ino); it != count_.end() && --it->second == 0) count_.erase(it);
  }
  bool is_open(uint64_t ino) const {
    std::lock_guard lock(mu_);
    return count_.count(ino) > 0;
  }

 private:
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, uint32_t> count_;
};

class HistoryDir;  // fuse/history_dir.h

// Everything the callbacks share; passed to libfuse as userdata. Outlives the
// session.
struct FuseContext {
  Fs& fs;
  MountOptions options;
  CommCache comms;
  OpenFiles open_files;
  DeviceIo device_io;
  fuse_session* session = nullptr;  // for notifications to the kernel; set before the loop
  HistoryDir* history = nullptr;    // the live disk's .history (roamfs_ops_with_history)
  std::string desktop;  // the remote desktop this session serves (remote_session.h); empty: the local mount
};

// The callback table. Operations left out on purpose: flush (the kernel writes
// back dirty pages on close by itself; ENOSYS stops it asking), getlk/setlk/
// flock (the kernel's local locking is right for a filesystem with one host),
// forget (inodes are never freed while the op log refers to them).
// A callback added here needs its router in history_ops.cc too, or requests
// on .history inodes would reach the live disk.
const fuse_lowlevel_ops& roamfs_ops();

// Serves `se`'s requests (libfuse's multi-threaded loop, or one thread)
// until the session ends; libfuse's result.
int serve_session(fuse_session* se, bool single_thread);

// Replies with the errno of `s` (logging EIO, which means a checksum mismatch
// or store damage): the one place where a Status becomes an errno.
void reply_status(fuse_req_t req, const Status& s);
// Answers a size probe (size == 0) or returns the bytes, per the xattr API.
void reply_xattr_bytes(fuse_req_t req, const std::string& bytes, size_t size);
// What stat(2) shows for `i`.
struct stat to_stat(const Inode& i);

}  // namespace roam
