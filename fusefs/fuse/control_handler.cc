#include "fusefs/fuse/control_handler.h"

#include <fcntl.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <variant>
#include <string>
#include <vector>

#include "fusefs/control/execute.h"
#include "protocol/curve_keys.h"

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

// Descriptors (O_PATH) of the entries a restore replaced, as the kernel
// still has them cached; closed in the destructor. Holding them keeps the
// replaced inodes, and their cached pages, alive past the invalidation.
class HeldEntries {
 public:
  HeldEntries() = default;
  HeldEntries(const HeldEntries&) = delete;
  HeldEntries& operator=(const HeldEntries&) = delete;
  ~HeldEntries() {
    for (int fd : fds_) ::close(fd);
  }
  void hold(const std::string& path) {
    int fd = ::open(path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) fds_.push_back(fd);  // a failure only means the pages are freed now
  }

 private:
  std::vector<int> fds_;
};

// Enough for any restore of a few large files; a restore of thousands of
// small ones frees little page cache per file.
constexpr size_t kMaxHeldEntries = 256;

std::shared_ptr<HeldEntries> hold_retired(const std::string& mountpoint, const RestoreResult& result) {
  auto held = std::make_shared<HeldEntries>();
  for (size_t i = 0; i < result.retired_files.size() && i < kMaxHeldEntries; ++i)
    held->hold(mountpoint + result.retired_files[i]);
  return held;
}

}  // namespace

namespace {

control::Reply reply_of(const Status& s) {
  control::Reply r;
  if (!s) r.err = s.err(), r.message = s.message();
  return r;
}

// How long a restore waits for a remote desktop to write back its cached
// changes (RemoteServer::sync_desktop).
constexpr auto kRemoteSyncTimeout = std::chrono::seconds(10);

// Whether `req` changes the tree: a restore, an undo of a restore, an undo.
bool changes_tree(const control::Request& req) {
  if (const auto* r = std::get_if<control::RestoreCall>(&req)) return !r->dry_run;
  if (const auto* u = std::get_if<control::UndoCall>(&req)) return !u->dry_run;
  return std::holds_alternative<control::UndoRestoreCall>(req);
}

// The requests only a roamfs with a remote session answers.
std::optional<control::Handled> handle_remote(const ServedDisk& disk, const control::Request& req) {
  if (!disk.remote) return std::nullopt;  // execute() says the disk is not served remotely
  if (const auto* allow = std::get_if<control::RemoteAllowCall>(&req)) {
    auto raw = proto::key_from_hex(allow->key_hex, "the desktop key");
    if (!raw) return control::Handled{reply_of(raw.status()), {}};
    return control::Handled{reply_of(disk.remote->allow(proto::to_hex(*raw), allow->epoch)), {}};
  }
  if (std::holds_alternative<control::RemoteFenceCall>(req)) {
    disk.remote->fence();
    return control::Handled{};
  }
  return std::nullopt;
}

}  // namespace

control::Handled handle_control(Store& store, const ServedDisk& disk, const control::Request& req,
                                const ucred& caller) {
  if (auto handled = handle_remote(disk, req)) return std::move(*handled);
  // A remote desktop's kernel caches writes of its own: written back after
  // the restore, they would land over what it restored. (The local mount's
  // are the caller's to flush first: roamctl and the broker sync it.)
  if (disk.remote && changes_tree(req))
    if (Status synced = disk.remote->sync_desktop(kRemoteSyncTimeout); !synced)
      return control::Handled{reply_of(synced), {}};
  const Caller who = control::process_caller(caller.uid, caller.gid, static_cast<uint32_t>(caller.pid));
  control::Context context{who, disk.is_open};
  control::Executed done = control::execute(store, context, req);
  control::Handled handled{std::move(done.reply), {}};
  if (handled.reply.err == 0 && handled.reply.seq != 0) {  // a restore changed the tree
    auto held = hold_retired(disk.mountpoint, done.result);
    invalidate(disk.local, done.result);
    if (disk.remote) disk.remote->with_session([&done](fuse_session* se) { invalidate(se, done.result); });
    handled.after_reply = [held = std::move(held)]() mutable { held.reset(); };
  }
  return handled;
}

}  // namespace roam
