// The switch state machine: moving a user's disk from a source desktop to a
// target desktop (docs/switching.md has the picture).
//
//   provision -> detach -> release -> export -> attach -> done
//
// provision  wait until the target's agent is connected (the broker ran the
//            provisioner if the target did not exist); then persist the intent
// detach     ask the source's agent to detach; skipped when the source is
//            absent or dead; a refusal (busy files, no force) ends the switch
//            with nothing changed
// release    end the source epoch's roamfs: gracefully after a clean detach,
//            else fence it (abort + SIGKILL), so the source can no longer
//            touch the disk
// export     record a new epoch, then start its roamfs on the host
// attach     ask the target's agent to mount it at the user's home and verify
//
// A target whose agent registered the `remote` mount driver gets its disk
// over the network (docs/remote.md): the epoch's roamfs is mounted on the
// host in the disk host's private directory, listens on the disk's port
// (chosen once from the configured range and kept in the disk's record) and
// allows that desktop's agent key only; the Attach names
// "tcp://ADDRESS:PORT#KEY". Fencing is the same for both kinds: ending the
// epoch's roamfs ends the old desktop's sessions, and the next epoch's roamfs
// refuses its key.
//
// An export or attach that fails or times out is rolled back: the new
// epoch's roamfs is fenced and the disk left attached to no desktop.
//
// Every phase change is persisted in the user's intent record, so a broker
// restarted mid-switch resumes at the persisted phase (resume()). Each
// operation is idempotent on the agents' side, so a repeated Detach/Attach is
// harmless. The Switcher lives in the broker's event-loop thread; it blocks
// only inside release/export (bounded by the disk host's timeouts).
//
// Everything it needs of the host (roamfs processes, export directories, the
// clocks) comes through SwitchEnv, so that tests/unit/test_switch.cc drives
// every path, a broker restart at each phase included, without processes.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/disk_host.h"
#include "broker/peers.h"
#include "broker/records.h"
#include "protocol/protocol.h"

namespace roam::broker {

enum class SwitchPhase { kProvision, kDetach, kRelease, kExport, kAttach };

// Who asked, so the result can be sent back (none for automatic switches).
struct Requester {
  std::string routing_id;
  uint64_t request_id = 0;
};

struct SwitchOrder {
  std::string user;
  std::string target;
  std::string reason = "request";
  bool force = true;
  std::optional<Requester> requester;
};

struct SwitchTimeouts {
  int provision_ms = 30000;
  int detach_ms = 5000;
  int attach_ms = 10000;
  int grace_ms = 2000;
};

// The switcher's time, behind an interface so that tests can move it.
class SwitchClock {
 public:
  virtual ~SwitchClock() = default;
  // Monotonic: the deadlines of the phases.
  virtual std::chrono::steady_clock::time_point now() const = 0;
  // Nanoseconds since the epoch: switch ids, the intent's start and step
  // times and the audit record, which outlive the broker process.
  virtual int64_t wall_ns() const = 0;
};

// The system's clocks: steady_clock and now_ns() (records.h).
class SystemSwitchClock final : public SwitchClock {
 public:
  std::chrono::steady_clock::time_point now() const override { return std::chrono::steady_clock::now(); }
  int64_t wall_ns() const override { return now_ns(); }
};

// Serving disks to remote desktops: the broker's remote-ports and
// remote-address settings.
struct RemoteConfig {
  uint16_t first_port = 0;  // 0: no range configured, remote desktops cannot be served
  uint16_t last_port = 0;
  std::string address;      // how desktops reach this host; empty: the host of their broker endpoint
};

// "LOW-HIGH" (1 <= LOW <= HIGH <= 65535) as a RemoteConfig's ports; "" is no range.
Status parse_port_range(std::string_view text, RemoteConfig& out);

// The port of `user`'s disk for remote desktops: `current` when it is in the
// range and no other disk of `disks` (user -> record) has it, else the lowest
// port of the range that none has. EINVAL without a range, ENOSPC when every
// port is taken.
Result<uint16_t> choose_remote_port(const RemoteConfig& cfg, const std::string& user, uint16_t current,
                                    const std::vector<std::pair<std::string, DiskRecord>>& disks);

// What the switcher uses of the broker; every reference outlives the Switcher.
struct SwitchEnv {
  Registry& registry;
  Peers& peers;
  DiskHost& disks;
  const SwitchClock& clock;
  SwitchTimeouts timeouts;
  RemoteConfig remote;
  // Sends a message to a connected desktop's agent.
  std::function<Status(const std::string& desktop, const proto::Message&)> send;
  // Sends the final reply of a switch to whoever requested it.
  std::function<void(const Requester&, const Status&, std::vector<std::string> rows)> reply;
  // Enrolls and provisions a desktop that does not exist yet.
  std::function<Status(const std::string& desktop)> provision;
};

class Switcher {
 public:
  explicit Switcher(SwitchEnv env) : env_(std::move(env)) {}

  // Checks the order and starts the switch. Errors (unknown user, no disk,
  // target damaged or used by another user, a switch already running for the
  // user) are returned at once and nothing changes.
  Status start(SwitchOrder order);
  // Finishes the switches whose intents a previous broker run persisted.
  Status resume();

  void on_register(const std::string& desktop);
  void on_detach_done(const std::string& desktop, const proto::DetachDone& m);
  void on_attach_done(const std::string& desktop, const proto::AttachDone& m);
  // Called every heartbeat interval: timeouts.
  void on_tick();

  bool running_for(const std::string& user) const { return jobs_.count(user) != 0; }
  // "user source -> target (phase)" for each running switch.
  std::vector<std::vector<std::string>> describe() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Job {
    IntentRecord intent;
    std::string user;
    SwitchPhase phase = SwitchPhase::kProvision;
    Clock::time_point deadline;
    bool detached_cleanly = false;
    bool command_sent = false;
    bool resumed = false;  // taken over from a previous broker run
    std::optional<Requester> requester;
  };

  Status check(const SwitchOrder& order, const std::optional<AttachmentRecord>& att) const;
  // Runs phases that need no answer until the job waits or ends.
  void advance(Job& job);
  Status enter(Job& job, SwitchPhase phase, int timeout_ms);
  void send_command(Job& job);
  // Ends the epoch `user`'s attachment names, if any (fencing it or not),
  // and records the disk as attached nowhere.
  Status end_epoch(const std::string& user, bool fence);
  Status release(Job& job);
  Status export_disk(Job& job);
  // The new epoch's attachment for the target (and how its roamfs serves a
  // remote target); `disk` gets the epoch, and the port of a remote one.
  Result<std::pair<AttachmentRecord, std::optional<RemoteServe>>> plan_epoch(const Job& job, DiskRecord& disk);
  void step_done(Job& job, const std::string& step);
  Clock::time_point deadline_in(int timeout_ms) const;
  // Ends a switch that failed, rolling back its export when it had one.
  void fail(Job& job, const Status& result);
  void finish(Job& job, const Status& result);
  Job* job_waiting_on(const std::string& desktop, SwitchPhase phase, uint64_t request_id);

  SwitchEnv env_;
  std::map<std::string, Job> jobs_;  // by user
  uint64_t next_id_ = 0;  // set from the clock at the first switch: unique across restarts
};

std::string_view phase_name(SwitchPhase p);
std::optional<SwitchPhase> phase_from_name(std::string_view name);

}  // namespace roam::broker
