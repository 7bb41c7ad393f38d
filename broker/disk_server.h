// Serving a user disk on the host: one roamfs process per attachment epoch,
// mounted at EXPORTS/DESKTOP/USER@EPOCH, and ending it either gracefully or by
// fencing.
//
// Isolation: EXPORTS (RUN_DIR/exports) is a private mount, and each
// EXPORTS/DESKTOP a shared one whose only slave copy is in that desktop's
// mount namespace (roam-desktop sets this up and drops the other desktops'
// copies). A disk mounted under EXPORTS/D therefore appears in desktop D
// and in no other desktop.
//
// Fencing is host side and needs nothing from the desktop: the FUSE
// connection of the old mount is aborted (fusectl), its roamfs is SIGKILLed
// and the mount lazily detached. From then on every access through any mount
// of that epoch (the desktop's bind mount included) fails with ENOTCONN, and
// nothing more can reach the store's op log. A new epoch gets a new roamfs,
// which can only start once the old one released the store's lock.
//
// All calls block (for at most the timeouts given) and are made from the
// broker's single event-loop thread.
#pragma once

#include <sys/types.h>

#include <string>

#include "base/status.h"
#include "broker/disk_host.h"

namespace roam::broker {

struct DiskServerConfig {
  std::string roamfs;       // path of the roamfs binary
  std::string exports_dir;  // RUN_DIR/exports
  std::string log_dir;      // roamfs output, one file per user: LOG_DIR/USER.roamfs.log
  int start_timeout_ms = 15000;
  int stop_timeout_ms = 5000;
};

// Makes `exports_dir` exist and be a private mount point, and mounts fusectl
// if it is not mounted. Idempotent.
Status prepare_exports(const std::string& exports_dir);

// EXPORTS/DESKTOP, made a shared mount point if it is not a mount point yet
// (a desktop started before that will not see it: roam-desktop makes it first).
Result<std::string> desktop_export_dir(const DiskServerConfig& cfg, const std::string& desktop);

// Starts `roamfs STORE MOUNT_POINT -f` as a child (log appended to
// LOG_FILE) and returns its pid once the mount is visible; EIO with the
// log's last line when roamfs exits or times out first. When the desktop
// (EXPORTS/DESKTOP) has a user namespace of its own, its provisioner left a
// handle of it at EXPORTS/DESKTOP.userns, and roamfs gets `--userns` that
// handle: the disk is served to that namespace, its uids and gids are the
// desktop's, and the host's processes cannot use the mount (nothing here
// stats it).
Result<pid_t> start_roamfs(const DiskServerConfig& cfg, const std::string& store, const std::string& mount_point,
                           const std::string& log_file);

// Ends the roamfs `pid` serving `mount_point`. Gracefully: detach the mount
// and let roamfs finish (flush, exit) within stop_timeout_ms; when it does not,
// or when `fence` is set at once: abort the connection and SIGKILL. Returns
// once the process is gone and the mount point is no longer mounted. A pid
// that is not a roamfs serving this mount point (e.g. reused after a
// restart) is never signalled; `pid` 0 stands for the roamfs whose command
// line names `mount_point`, found in /proc.
Status stop_roamfs(const DiskServerConfig& cfg, pid_t pid, const std::string& mount_point, bool fence);

// Whether `pid` is a live roamfs serving `mount_point` (used to adopt the
// roamfs processes of a previous broker run).
bool roamfs_alive(pid_t pid, const std::string& mount_point);

// The DiskHost of the switcher over the functions above; each roamfs logs to
// LOG_DIR/USER.roamfs.log. `cfg` must outlive it.
class RoamfsHost final : public DiskHost {
 public:
  explicit RoamfsHost(const DiskServerConfig& cfg) : cfg_(cfg) {}
  Result<std::string> export_dir(const std::string& desktop) override;
  Result<pid_t> start(const std::string& user, const std::string& store, const std::string& mount_point) override;
  Status stop(pid_t pid, const std::string& mount_point, bool fence) override;

 private:
  const DiskServerConfig& cfg_;
};

}  // namespace roam::broker
