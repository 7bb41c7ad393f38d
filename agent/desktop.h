// What roam-agent does inside its desktop, apart from talking to the broker:
// it carries out Detach and Attach at the user's home through its mount
// driver, and every heartbeat interval unmounts the homes the broker fenced
// and runs the health checks. Each call returns the messages to send to the
// broker; the Agent (agent.h) owns the connection, heartbeats and reconnects,
// and sends them. Kept apart from the ZeroMQ loop, with the OS behind
// DesktopOs, so that tests/unit/test_agent.cc drives it with fakes.
//
// Called from the agent's loop only. A Detach blocks for up to its grace
// period while busy processes are made to let go; health checks run on a
// thread of their own and never block it.
#pragma once

#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/mount_driver.h"
#include "base/status.h"
#include "protocol/protocol.h"

namespace roam::agent {

// A home whose disk answers ENOTCONN, as the look for fenced homes found it.
// `mount_id` names that very mount: a new mount at the same path has another
// (the kernel's unique mount id, never reused; mountinfo's ids are, at once).
struct FencedMount {
  std::string mount_point;
  uint64_t mount_id = 0;
};

// The parts of the desktop's OS the agent uses besides its mount driver.
class DesktopOs {
 public:
  virtual ~DesktopOs() = default;
  // Flushes what the desktop cached for the filesystem at `home` (syncfs).
  // Best effort: it fails harmlessly on a fenced mount.
  virtual void sync(const std::string& home) = 0;
  // Makes the processes holding files under `home`, or under any other
  // mount of the same disk in the desktop (its export), let go (release_busy,
  // busy.h): without `force`, EBUSY naming them; with it, SIGTERM, then
  // SIGKILL after grace_ms.
  virtual Status release_busy(const std::string& home, bool force, int grace_ms) = 0;
  // The first failing health check as a sentence, nullopt when all pass
  // (first_failing_check, health.h). Called on a thread of its own (not the
  // agent's loop), one call at a time.
  virtual std::optional<std::string> first_failing_check(const std::vector<std::string>& commands,
                                                         int timeout_ms) = 0;
  // The roamfs mounts under `home_base`/ whose FUSE connection is gone
  // (every access answers ENOTCONN): the broker fenced them. Called on a
  // thread of its own (Desktop::unmount_fenced_homes), while the agent's
  // loop may make the other calls; it may block while a live disk is busy.
  virtual std::vector<FencedMount> fenced_mounts(const std::string& home_base) = 0;
  // Detaches `fenced` (one fenced_mounts found) lazily if it is still the
  // mount at its mount point: a mount made there since the look (the home
  // detached and attached again) is left alone. Best effort.
  virtual void unmount_fenced(const FencedMount& fenced) = 0;
  // Gives `home`, the root of a user disk just attached, to `user` while it
  // still belongs to uid 0 (a new disk: the broker made it): the uid and gid
  // this desktop's /etc/passwd names, mode 0700, so that the user owns their
  // home (on every desktop that gives them the same uid). A home owned by
  // anyone else, or a user the desktop does not know, is left alone.
  virtual Status give_home(const std::string& home, const std::string& user) = 0;
};

// The real one: syncfs, /proc, /bin/sh, mountinfo, statfs, umount2, and the
// desktop's /etc/passwd with chown.
std::unique_ptr<DesktopOs> make_desktop_os();

struct DesktopConfig {
  std::string home_base = "/home";  // users' homes are HOME_BASE/USER
  std::vector<std::string> health_checks;
  int health_interval_ms = 1000;
  int health_timeout_ms = 10000;
  // Where this desktop sees the broker's export directory for it, when its
  // root is its own (a container): the broker names an export by its host
  // path, and the agent mounts EXPORT_DIR/<its last component> instead.
  // Empty: the host's path is visible as it is. A remote export
  // ("tcp://...", proto::Attach) is never mapped.
  std::string export_dir;
  // The host of the broker endpoint the agent connects to: a remote export
  // with an empty host ("tcp://:PORT#KEY") is served there.
  std::string broker_host;
};

class Desktop {
 public:
  using Clock = std::chrono::steady_clock;

  // `driver` and `os` must outlive the Desktop.
  Desktop(DesktopConfig cfg, MountDriver& driver, DesktopOs& os)
      : cfg_(std::move(cfg)), driver_(driver), os_(os) {}
  // Waits for a health check still running (at most health_timeout_ms).
  ~Desktop();
  Desktop(const Desktop&) = delete;
  Desktop& operator=(const Desktop&) = delete;

  // The answer to a message from the broker: a DetachDone to a Detach, an
  // AttachDone to an Attach (each carries the request's id and an errno, 0
  // for success); nothing for the messages the desktop has no part in.
  std::vector<proto::Message> on_message(const proto::Message& m);
  // Called every heartbeat interval: unmounts the fenced homes and, when
  // health_interval_ms has passed since the last run started (or at the
  // first call) and that run has finished, starts the health checks on a
  // thread of their own; never waits for them. Returns a Damage when a
  // finished run is the first to fail: once, and again only after the
  // checks passed in between.
  std::vector<proto::Message> on_interval(Clock::time_point now);
  // Whether a run of the health checks is under way (started, not finished).
  bool health_check_running() const;
  // Whether a look for fenced homes is under way (started, not finished).
  bool fence_scan_running() const;

 private:
  // Syncs the home, makes busy processes let go, unmounts. Not mounted: success.
  proto::DetachDone detach(const proto::Detach& d);
  // Mounts the export at the home, verifies it and gives a new home to its
  // user; idempotent (driver, DesktopOs::give_home).
  proto::AttachDone attach(const proto::Attach& a);
  // Where this desktop sees the export the broker names `export_path`, or
  // where it reaches a remote one.
  std::string local_export(const std::string& export_path) const;
  void unmount_fenced_homes();
  std::optional<proto::Damage> check_health(Clock::time_point now);
  // The Damage to send for a finished run's result, if it newly fails.
  std::optional<proto::Damage> report(const std::optional<std::string>& failure);
  std::string home_of(const std::string& user) const { return cfg_.home_base + "/" + user; }

  DesktopConfig cfg_;
  MountDriver& driver_;
  DesktopOs& os_;
  Clock::time_point next_health_{};  // the epoch: the first interval runs the checks
  bool damage_reported_ = false;
  std::future<std::optional<std::string>> running_check_;  // the run in progress, or finished and unreported
  std::future<std::vector<FencedMount>> fence_scan_;  // fenced_mounts in progress, or finished and not acted on
};

}  // namespace roam::agent
