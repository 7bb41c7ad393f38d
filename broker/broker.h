// roam-broker: the control plane. One ROUTER socket (CURVE server) for agents
// and roamctl, one event loop, one thread that owns all the broker's state:
// no locks. The loop polls the ROUTER, the ZAP handler, a signalfd and the
// Background's eventfd (history requests call roamfs on threads of their
// own, which touch none of this state: background.h), and every heartbeat
// interval runs liveness, switch timeouts and supervision of the roamfs
// processes.
#pragma once

#include <zmq.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/auth.h"
#include "broker/background.h"
#include "broker/history_requests.h"
#include "broker/rate_limit.h"
#include "broker/disk_server.h"
#include "broker/peers.h"
#include "protocol/curve_keys.h"
#include "protocol/transport.h"
#include "broker/registry.h"
#include "broker/switch.h"

namespace roam::broker {

struct BrokerConfig {
  std::string endpoint = "tcp://127.0.0.1:5555";
  std::string agent_endpoint;            // told to provisioned agents; empty: `endpoint`
  std::string key_file;                  // the broker's key pair (roamctl keygen)
  std::string state_dir = "/var/lib/roamdisk";  // registry, disk stores, enrolled agent keys
  std::string run_dir = "/run/roamdisk";        // mounts of the disks (RUN_DIR/disks)
  std::string roamfs = "/usr/local/bin/roamfs";
  std::string provisioner;               // shell command, see provisioner.h; empty: none
  std::vector<std::string> operator_keys;  // hex public keys
  std::vector<std::string> agent_keys;     // "DESKTOP:HEX"
  int dead_after_ms = 2000;              // heartbeat silence after which a desktop is dead
  // Remote desktops (docs/remote.md): the ports their disks' roamfs listen
  // on ("LOW-HIGH"; empty: none, and remote desktops cannot be served), the
  // address roamfs binds, and the address desktops reach it at (empty:
  // the host of the broker endpoint each agent connected to).
  std::string remote_ports;
  std::string remote_bind = "0.0.0.0";
  std::string remote_address;
  RateLimit history_rate;                // requests on a disk's history, per desktop
  SwitchTimeouts timeouts;
};

class Broker {
 public:
  // Opens the registry, binds the sockets, prepares the export directory and
  // resumes persisted switches. Errors say which step failed.
  static Result<std::unique_ptr<Broker>> create(BrokerConfig cfg);
  // Serves until SIGINT or SIGTERM, which the caller must have blocked in
  // every thread before creating the broker (block_stop_signals in
  // base/sys/daemon.h): they are read from a signalfd.
  Status run();
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

 private:
  explicit Broker(BrokerConfig cfg);
  Status setup();
  Status allow_configured_keys();
  Status make_state_dirs();
  Status open_registry();
  Status listen();
  std::unique_ptr<Switcher> make_switcher();
  void on_message(proto::Routed& in);
  void on_tick();
  void supervise();
  void failover(const std::string& desktop, const std::string& reason);
  Result<std::string> spare_desktop(const std::string& except);
  Status provision(const std::string& desktop);

  // Agent messages; `key_hex` is the key the agent's connection authenticated with.
  void handle_agent(const Principal& who, const std::string& key_hex, const std::string& rid,
                    const proto::Message& m);
  Status remember_registration(const std::string& desktop, const std::string& key_hex, const proto::Register& r);
  // roamctl requests; the reply is sent by the handler (at once, or when a switch ends).
  void handle_request(const Principal& who, const std::string& rid, const proto::Message& m);
  // Table replies: rows[0] names the columns. disk_table(true) is `status`.
  Result<std::vector<std::string>> disk_table(bool with_switches);
  Result<std::vector<std::string>> user_table();
  Result<std::vector<std::string>> desktop_table();
  Result<std::vector<std::string>> audit_table(uint64_t limit);
  Status create_desktop(const std::string& id);
  Status remove_desktop(const std::string& id);
  Status create_disk(const std::string& user);
  // Sets the quota in the disk's store: through its roamfs when attached
  // (at most 5 s: the broker's thread never waits on a hung roamfs), else
  // in the store directly (EBUSY while a switch holds it).
  Status set_disk_quota(const std::string& user, uint64_t bytes);
  Status add_user(const std::string& user);
  // Requests on a disk's history (history_handler.cc).
  struct HistoryTarget {
    std::string user, store, mount_point;
  };
  // Checks, rate-limits and builds the request on the loop; the call to
  // roamfs runs in background_; finish_history audits and replies.
  void handle_history(const Principal& who, const std::string& rid, const proto::HistoryRequest& r);
  Result<HistoryTarget> history_target(const Principal& who, const proto::HistoryRequest& r);
  Status start_history(const Principal& who, const std::string& rid, const proto::HistoryRequest& r,
                       const HistoryTarget& t);
  void finish_history(const Principal& who, const std::string& rid, const proto::HistoryRequest& r,
                      const std::string& user, const Result<Answer>& answer);
  // A reply; `message` (when not empty) replaces "ok" in a success.
  void reply(const std::string& rid, uint64_t request_id, const Status& s, std::vector<std::string> rows = {},
             std::string message = "");

  BrokerConfig cfg_;
  RemoteConfig remote_;  // set by setup() from cfg_
  proto::KeyPair keys_;
  DiskServerConfig disks_;        // set by setup()
  RoamfsHost disk_host_{disks_};  // the switcher's disk host: roamfs processes per disks_
  SystemSwitchClock clock_;
  zmq::context_t ctx_;
  Authenticator auth_;
  zmq::socket_t router_;
  Registry registry_;
  Peers peers_;
  std::unique_ptr<Switcher> switcher_;
  RateLimiter history_limiter_{cfg_.history_rate};
  std::optional<Background> background_;  // set by setup()
  int signal_fd_ = -1;
};

}  // namespace roam::broker
