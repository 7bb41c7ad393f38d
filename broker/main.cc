// roam-broker --config FILE: the roamdisk control plane (see broker.h).
#include <CLI/CLI.hpp>
#include <utility>

#include "broker/broker.h"
#include "base/sys/daemon.h"

namespace {

void add_options(CLI::App& app, roam::broker::BrokerConfig& c) {
  app.set_config("--config", "", "INI configuration file (every option below may be set there)", true);
  app.allow_config_extras(false);  // a misspelt key is an error, not silently ignored
  app.add_option("--endpoint", c.endpoint, "ZeroMQ endpoint to listen on")->capture_default_str();
  app.add_option("--agent-endpoint", c.agent_endpoint,
                 "endpoint given to provisioned agents, when --endpoint is not connectable (tcp://*:PORT)");
  app.add_option("--key-file", c.key_file, "the broker's key pair (roamctl keygen)")->required();
  app.add_option("--state-dir", c.state_dir, "registry, disk stores, enrolled agent keys")->capture_default_str();
  app.add_option("--run-dir", c.run_dir, "where disks are mounted on the host")->capture_default_str();
  app.add_option("--roamfs", c.roamfs, "the roamfs binary")->capture_default_str();
  app.add_option("--provisioner", c.provisioner, "shell command that creates or removes a desktop");
  app.add_option("--operator-key", c.operator_keys, "hex public key of an operator (repeatable)");
  app.add_option("--agent-key", c.agent_keys, "DESKTOP:HEX public key of a desktop's agent (repeatable)");
  app.add_option("--dead-after-ms", c.dead_after_ms, "heartbeat silence that makes a desktop dead")
      ->capture_default_str();
  app.add_option("--history-burst", c.history_rate.burst,
                 "requests on a disk's history (roam) a desktop may make at once")
      ->capture_default_str();
  app.add_option("--history-per-second", c.history_rate.per_second,
                 "requests on a disk's history a desktop may make per second, sustained")
      ->capture_default_str();
  app.add_option("--remote-ports", c.remote_ports,
                 "LOW-HIGH: the ports the disks of remote desktops are served on, one per disk (docs/remote.md)");
  app.add_option("--remote-bind", c.remote_bind, "the address a remote desktop's roamfs listens on")
      ->capture_default_str();
  app.add_option("--remote-address", c.remote_address,
                 "how remote desktops reach this host (default: the host of the broker endpoint they use)");
  app.add_option("--provision-timeout-ms", c.timeouts.provision_ms)->capture_default_str();
  app.add_option("--detach-timeout-ms", c.timeouts.detach_ms)->capture_default_str();
  app.add_option("--attach-timeout-ms", c.timeouts.attach_ms)->capture_default_str();
  app.add_option("--grace-ms", c.timeouts.grace_ms, "time busy processes get before SIGKILL")
      ->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"roam-broker: moves user disks between desktops"};
  roam::broker::BrokerConfig cfg;
  add_options(app, cfg);
  CLI11_PARSE(app, argc, argv);

  return roam::run_daemon<roam::broker::Broker>("roam-broker", std::move(cfg));
}
