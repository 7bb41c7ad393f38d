// roam-agent --config FILE: the desktop side of switching (see agent.h).
// roam-agent mount-remote EXPORT HOME --key-file F: the `remote` mount driver
// alone, without a broker (a disk whose roamfs allows this key), until
// SIGINT or SIGTERM; for tests and for trying a compute host by hand.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstring>
#include <utility>

#include "agent/agent.h"
#include "agent/remote_driver.h"
#include "base/sys/daemon.h"

namespace {

struct RemoteMountConfig {
  std::string export_path, home, key_file, desktop = "remote";
};

// Attaches at create, detaches when a stop signal arrives.
class RemoteMount {
 public:
  static roam::Result<std::unique_ptr<RemoteMount>> create(RemoteMountConfig cfg) {
    std::unique_ptr<RemoteMount> m(new RemoteMount(std::move(cfg)));
    ROAM_ASSIGN(auto keys, roam::proto::read_key_file(m->cfg_.key_file));
    m->driver_ = roam::agent::make_remote_driver({m->cfg_.desktop, std::move(keys)});
    ROAM_TRY(m->driver_->attach(m->cfg_.export_path, m->cfg_.home));
    std::printf("mounted %s at %s\n", m->cfg_.export_path.c_str(), m->cfg_.home.c_str());
    std::fflush(stdout);
    return m;
  }

  roam::Status run() {
    sigset_t stop = roam::stop_signals();
    int sig = 0;
    ::sigwait(&stop, &sig);
    ::sync();
    return driver_->detach(cfg_.home);
  }

 private:
  explicit RemoteMount(RemoteMountConfig cfg) : cfg_(std::move(cfg)) {}
  RemoteMountConfig cfg_;
  std::unique_ptr<roam::agent::MountDriver> driver_;
};

int mount_remote(int argc, char** argv) {
  CLI::App app{"roam-agent mount-remote: mount a disk served by a remote roamfs (--remote-listen) at HOME "
               "until SIGINT or SIGTERM, then sync and unmount"};
  RemoteMountConfig c;
  app.add_option("export", c.export_path, "where roamfs listens: tcp://ADDR:PORT#KEY (its public key, hex)")
      ->required();
  app.add_option("home", c.home, "the directory to mount the disk on")->required();
  app.add_option("--key-file", c.key_file, "this desktop's key pair (roamctl keygen)")->required();
  app.add_option("--desktop", c.desktop, "this desktop's id, as roamfs logs it")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return roam::run_daemon<RemoteMount>("roam-agent mount-remote", std::move(c));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "mount-remote") == 0) return mount_remote(argc - 1, argv + 1);
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
  app.add_option("--mount-driver", c.mount_driver, "how the disk is mounted (bind, remote)")->capture_default_str();
  app.add_option("--health-check", c.health_checks, "a command whose failure means OS damage (repeatable)");
  app.add_option("--health-interval-ms", c.health_interval_ms)->capture_default_str();
  app.add_option("--user-socket", c.user_socket,
                 "where the desktop's users reach the agent with `roam` (empty: nowhere)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  return roam::run_daemon<roam::agent::Agent>("roam-agent", std::move(c));
}
