// roam-agent: runs inside a desktop. It keeps one DEALER connection to the
// broker (CURVE client), registers and heartbeats; what it does in the
// desktop (Detach and Attach through its mount driver, health checks that
// report OS damage, unmounting fenced homes) is the Desktop's (desktop.h),
// whose answers it sends.
//
// Liveness (Paranoid Pirate): every message from the broker resets a counter
// to kAgentBrokerLiveness; every heartbeat interval without one decrements
// it; at zero the agent drops the socket and reconnects after a backoff that
// doubles from kReconnectInitialMs up to kReconnectMaxMs, and registers again.
// One loop thread; a Detach may block it for up to its grace period. Health
// checks run on a thread of their own (desktop.h), off the heartbeat path.
#pragma once

#include <zmq.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/desktop.h"
#include "agent/mount_driver.h"
#include "agent/user_socket.h"
#include "protocol/local_socket.h"
#include "protocol/curve_keys.h"
#include "protocol/protocol.h"

namespace roam::agent {

struct AgentConfig {
  std::string desktop;
  std::string broker = "tcp://127.0.0.1:5555";
  std::string broker_public_key;  // hex
  std::string key_file;           // this agent's key pair
  std::string home_base = "/home";
  std::string export_dir;  // DesktopConfig::export_dir
  std::string mount_driver = "bind";
  std::vector<std::string> health_checks;
  int health_interval_ms = 1000;
  int health_timeout_ms = 10000;
  // Where `roam` reaches the agent (user_socket.h); empty: nowhere.
  std::string user_socket = std::string(proto::kAgentSocketPath);
};

class Agent {
 public:
  static Result<std::unique_ptr<Agent>> create(AgentConfig cfg);
  // Serves until SIGINT or SIGTERM (blocked by the caller with
  // block_stop_signals, base/sys/daemon.h; read from a signalfd).
  Status run();
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

 private:
  using Clock = std::chrono::steady_clock;
  explicit Agent(AgentConfig cfg) : cfg_(std::move(cfg)) {}
  Status connect();
  void on_message(const proto::Message& m);
  void on_interval();
  void reconnect();
  void send(const proto::Message& m);
  void send_all(const std::vector<proto::Message>& messages);
  // Reads the users' connections that `items` say are readable (from index
  // `first` on, in UserSocket::poll_fds order) and passes their requests up.
  void serve_users(const std::vector<zmq::pollitem_t>& items, size_t first);

  AgentConfig cfg_;
  proto::KeyPair keys_;
  std::string broker_key_;
  std::unique_ptr<MountDriver> driver_;
  std::unique_ptr<DesktopOs> os_;
  std::unique_ptr<Desktop> desktop_;  // uses driver_ and os_
  std::optional<UserSocket> users_;
  zmq::context_t ctx_;
  std::optional<zmq::socket_t> socket_;
  int liveness_ = proto::kAgentBrokerLiveness;
  int backoff_ms_ = proto::kReconnectInitialMs;
  int signal_fd_ = -1;
};

}  // namespace roam::agent
