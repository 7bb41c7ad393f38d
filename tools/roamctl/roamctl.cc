// roamctl: the command line for operators and users of roamdisk. Each
// command is in its own file (commands.h lists them).
#include "tools/roamctl/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"roamctl: manage roamdisk user disks"};
  app.require_subcommand(1);
  int exit_code = 0;
  // In this order in --help.
  roam::ctl::add_mkfs_command(app, exit_code);
  roam::ctl::add_log_command(app, exit_code);
  roam::ctl::add_scrub_command(app, exit_code);
  roam::ctl::add_restore_command(app, exit_code);
  roam::ctl::add_undo_command(app, exit_code);
  roam::ctl::add_history_command(app, exit_code);
  roam::ctl::add_gc_command(app, exit_code);
  roam::ctl::add_remote_command(app, exit_code);
  roam::ctl::add_df_command(app, exit_code);
  roam::ctl::add_retention_command(app, exit_code);
  roam::ctl::add_quota_command(app, exit_code);
  roam::ctl::add_keygen_command(app, exit_code);
  roam::ctl::add_switch_command(app, exit_code);
  roam::ctl::add_status_command(app, exit_code);
  roam::ctl::add_audit_command(app, exit_code);
  roam::ctl::add_desktop_command(app, exit_code);
  roam::ctl::add_disk_command(app, exit_code);
  roam::ctl::add_user_command(app, exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
