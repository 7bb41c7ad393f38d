// roamctl: the command line for operators and users of roamdisk.
#include <cstdio>
#include <string>

#include "base/backing_fs.h"
#include "fusefs/store/store.h"
#include "tools/roamctl/commands.h"

namespace roam::ctl {

void add_mkfs_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("mkfs", "create an empty user disk store");
  auto store = std::make_shared<std::string>();
  cmd->add_option("store", *store, "directory to create (must be absent or empty)")->required();
  cmd->callback([store, &exit_code] {
    if (Status s = Store::create(*store); !s) {
      std::fprintf(stderr, "roamctl mkfs: %s\n", s.message().c_str());
      exit_code = 1;
      return;
    }
    std::printf("created an empty user disk store in %s\n", store->c_str());
    if (std::string w = power_loss_warning(*store, backing_fs_of(*store)); !w.empty())
      std::fprintf(stderr, "roamctl mkfs: warning: %s\n", w.c_str());
  });
}

}  // namespace roam::ctl

int main(int argc, char** argv) {
  CLI::App app{"roamctl: manage roamdisk user disks"};
  app.require_subcommand(1);
  int exit_code = 0;
  roam::ctl::add_mkfs_command(app, exit_code);
  roam::ctl::add_log_command(app, exit_code);
  roam::ctl::add_scrub_command(app, exit_code);
  roam::ctl::add_restore_command(app, exit_code);
  roam::ctl::add_history_command(app, exit_code);
  roam::ctl::add_gc_commands(app, exit_code);
  roam::ctl::add_keygen_command(app, exit_code);
  roam::ctl::add_switch_command(app, exit_code);
  roam::ctl::add_registry_commands(app, exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
