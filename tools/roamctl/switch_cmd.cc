// roamctl switch USER DESKTOP [--no-force]: move a user's disk to a desktop.
#include <chrono>
#include <cstdio>
#include <string>

#include "tools/roamctl/broker_client.h"
#include "tools/roamctl/commands.h"

namespace roam::ctl {

namespace {

struct SwitchArgs {
  BrokerArgs broker{.timeout_s = 120};  // provisioning a desktop takes a while
  std::string user, desktop;
  bool no_force = false;
};

int run_switch(const SwitchArgs& a) {
  auto start = std::chrono::steady_clock::now();
  proto::SwitchRequest req{new_request_id(), a.user, a.desktop, !a.no_force};
  auto reply = ask_broker(a.broker, req);
  if (!reply) return fail("switch", reply.status());
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  if (!a.broker.json)
    std::printf("switched %s to %s in %lld ms\n", a.user.c_str(), a.desktop.c_str(), static_cast<long long>(ms.count()));
  print_table(*reply, a.broker.json);
  return 0;
}

}  // namespace

void add_switch_command(CLI::App& app, int& exit_code) {
  auto [cmd, a] = add_command<SwitchArgs>(
      app, "switch", "move USER's disk to DESKTOP (provisioned if it does not exist)", run_switch, exit_code);
  cmd->add_option("user", a->user, "the user to move")->required();
  cmd->add_option("desktop", a->desktop, "the target desktop")->required();
  cmd->add_flag("--no-force", a->no_force, "refuse instead of killing processes that keep files open");
  add_broker_options(cmd, a->broker);
}

}  // namespace roam::ctl
