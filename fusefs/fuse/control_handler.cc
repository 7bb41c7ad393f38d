#include "fusefs/fuse/control_handler.h"

#include <syslog.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "fusefs/control/execute.h"

namespace roam {

namespace {

// The kernel forgets what changed: entries first (so a lookup cannot bring
// back a stale inode), then attributes and cached pages. ENOENT means the
// kernel had nothing cached, which is fine.
void invalidate(fuse_session* se, const RestoreResult& result) {
  for (const auto& [parent, name] : result.changed_entries) {
    int rc = fuse_lowlevel_notify_inval_entry(se, parent, name.c_str(), name.size());
    if (rc != 0 && rc != -ENOENT)
      syslog(LOG_WARNING, "roamfs: restore: kernel entry not invalidated: %s", std::strerror(-rc));
  }
  // Only the restored byte ranges lose their cached pages (a 1 GiB file with
  // one restored block keeps the rest of its cache); other inodes lose only
  // their attributes (offset -1).
  auto inval = [se](uint64_t ino, off_t off, off_t len) {
    int rc = fuse_lowlevel_notify_inval_inode(se, ino, off, len);
    if (rc != 0 && rc != -ENOENT)
      syslog(LOG_WARNING, "roamfs: restore: kernel inode not invalidated: %s", std::strerror(-rc));
  };
  for (const auto& [ino, offset, length] : result.changed_data)
    inval(ino, static_cast<off_t>(offset), static_cast<off_t>(std::min<uint64_t>(length, INT64_MAX)));
  for (uint64_t ino : result.changed_inodes) inval(ino, -1, 0);
}

}  // namespace

control::Reply handle_control(Store& store, fuse_session* se, const OpenFiles& open_files,
                              const control::Request& req, const ucred& caller) {
  const Caller who = control::process_caller(caller.uid, caller.gid, static_cast<uint32_t>(caller.pid));
  control::Context context{who, [&open_files](uint64_t ino) { return open_files.is_open(ino); }};
  control::Executed done = control::execute(store, context, req);
  if (done.reply.err == 0 && done.reply.seq != 0) invalidate(se, done.result);  // a restore changed the tree
  return std::move(done.reply);
}

}  // namespace roam
