// Serving a user disk on the host: one roamfs process per attachment epoch,
// mounted at EXPORTS/DESKTOP/USER@EPOCH (a bind desktop) or REMOTE/USER@EPOCH
// (a remote desktop, served over the network: docs/remote.md), and ending it
// either gracefully or by fencing.
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
// A remote desktop's disk: its roamfs also listens (--remote-listen
// tcp://BIND:PORT, --remote-key-file KEYS/USER.remote.key) and allows the
// target desktop's agent key only (--remote-allow, --remote-epoch). Fencing
// needs no more than for a bind desktop: the SIGKILL ends every session of
// that epoch (the desktop's requests fail from then on), and the next
// epoch's roamfs, on the same port, allows only its own desktop's key, so
// the old desktop's late requests are refused at the CURVE handshake and
// never reach the store or the op log. Its host mount, under REMOTE (a
// directory of mode 0700 that no desktop's mount namespace has), is for the
// broker's own use (history requests, supervision).
//
// All calls block (for at most the timeouts given) and are made from the
// broker's single event-loop thread.
#pragma once

#include <sys/types.h>

#include <optional>
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
  std::string remote_dir;   // RUN_DIR/remote: host mounts of the disks served to remote desktops
  std::string keys_dir;     // STATE_DIR/disks: USER.remote.key, each disk's remote key pair
  std::string remote_bind = "0.0.0.0";  // the address a remote disk's roamfs listens on
};

// Makes `exports_dir` exist and be a private mount point, and mounts fusectl
// if it is not mounted. Idempotent.
Status prepare_exports(const std::string& exports_dir);

// EXPORTS/DESKTOP, made a shared mount point if it is not a mount point yet
// (a desktop started before that will not see it: roam-desktop makes it first).
Result<std::string> desktop_export_dir(const DiskServerConfig& cfg, const std::string& desktop);

// The key pair file of `user`'s remote roamfs (KEYS/USER.remote.key),
// made with a fresh key pair (mode 0600) if it does not exist yet; returns
// its public key in hex.
Result<std::string> remote_key_of(const DiskServerConfig& cfg, const std::string& user);

// Starts `roamfs STORE MOUNT_POINT -f` as a child (log appended to
// LOG_FILE) and returns its pid once the mount is visible; EIO with the
// log's last line when roamfs exits or times out first. When the desktop
// (EXPORTS/DESKTOP) has a user namespace of its own, its provisioner left a
// handle of it at EXPORTS/DESKTOP.userns, and roamfs gets `--userns` that
// handle: the disk is served to that namespace, its uids and gids are the
// desktop's, and the host's processes cannot use the mount (nothing here
// stats it). With `remote` (for `user`), roamfs serves that remote desktop
// too (the header comment) and gets no --userns: the remote desktop's
// kernel sends its own uids.
Result<pid_t> start_roamfs(const DiskServerConfig& cfg, const std::string& store, const std::string& mount_point,
                           const std::string& log_file, const std::optional<RemoteServe>& remote = std::nullopt,
                           const std::string& user = "");

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
  Result<std::string> private_dir() override;
  Result<std::string> remote_key(const std::string& user) override { return remote_key_of(cfg_, user); }
  Result<pid_t> start(const std::string& user, const std::string& store, const std::string& mount_point,
                      const std::optional<RemoteServe>& remote) override;
  Status stop(pid_t pid, const std::string& mount_point, bool fence) override;

 private:
  const DiskServerConfig& cfg_;
};

}  // namespace roam::broker
