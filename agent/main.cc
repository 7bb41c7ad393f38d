// roam-agent --config FILE: the desktop side of switching (see agent.h).
#include <CLI/CLI.hpp>
#include <utility>

#include "agent/agent.h"
#include "base/sys/daemon.h"

int main(int argc, char** argv) {
  CLI::App app{"roam-agent: mounts and unmounts the user disk inside a desktop"};
  roam::agent::AgentConfig c;
  app.set_config("--config", "", "INI configuration file (every option below may be set there)", true);
  app.allow_config_extras(false);  // a misspelt key is an error, not silently ignored
  app.add_option("--desktop", c.desktop, "this desktop's id")->required();
  app.add_option("--broker", c.broker, "the broker's ZeroMQ endpoint")->capture_default_str();
  app.add_option("--broker-public-key", c.broker_public_key, "the broker's public key (hex)")->required();
  app.add_option("--key-file", c.key_file, "this agent's key pair (roamctl keygen)")->required();
  app.add_option("--home-base", c.home_base, "users' homes are HOME_BASE/USER")->capture_default_str();
  app.add_option("--export-dir", c.export_dir,
                 "where this desktop sees the broker's exports for it (a container's own root); "
                 "default: the broker's path as it is");
  app.add_option("--mount-driver", c.mount_driver, "how the disk is mounted (bind)")->capture_default_str();
  app.add_option("--health-check", c.health_checks, "a command whose failure means OS damage (repeatable)");
  app.add_option("--health-interval-ms", c.health_interval_ms)->capture_default_str();
  app.add_option("--user-socket", c.user_socket,
                 "where the desktop's users reach the agent with `roam` (empty: nowhere)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  return roam::run_daemon<roam::agent::Agent>("roam-agent", std::move(c));
}
