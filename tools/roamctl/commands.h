// roamctl's subcommands, one file each (NAME_cmd.cc), and what they share.
// Each add_*_command registers its options on `app` and sets the callback
// that runs it; a command reports errors as one sentence on stderr (fail) and
// returns a non-zero exit code through `exit_code`.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "base/status.h"

namespace roam::ctl {

// On a store or a mounted disk (STORE|MOUNTPOINT).
void add_mkfs_command(CLI::App& app, int& exit_code);
void add_log_command(CLI::App& app, int& exit_code);
void add_scrub_command(CLI::App& app, int& exit_code);
void add_restore_command(CLI::App& app, int& exit_code);
void add_undo_command(CLI::App& app, int& exit_code);
void add_history_command(CLI::App& app, int& exit_code);
void add_gc_command(CLI::App& app, int& exit_code);
void add_df_command(CLI::App& app, int& exit_code);
void add_retention_command(CLI::App& app, int& exit_code);
void add_quota_command(CLI::App& app, int& exit_code);
void add_remote_command(CLI::App& app, int& exit_code);  // remote allow|fence
// Keys.
void add_keygen_command(CLI::App& app, int& exit_code);
// Through the broker.
void add_switch_command(CLI::App& app, int& exit_code);
void add_status_command(CLI::App& app, int& exit_code);
void add_audit_command(CLI::App& app, int& exit_code);
void add_desktop_command(CLI::App& app, int& exit_code);  // desktop create|list|remove
void add_disk_command(CLI::App& app, int& exit_code);     // disk create|list
void add_user_command(CLI::App& app, int& exit_code);     // user add|list

// What the commands share (commands.cc).

// Prints "roamctl CMD: MESSAGE" on stderr and returns `exit_code`, the code
// the failed command exits with.
int fail(std::string_view cmd, const Status& s, int exit_code = 1);

// Adds the required STORE|MOUNTPOINT argument (for resolve_target, target.h).
CLI::Option* add_target_argument(CLI::App* cmd, std::string& target);

// The arguments of a command that takes a disk and --json and nothing else.
struct TargetJsonArgs {
  std::string target;
  bool json = false;
};

// Adds subcommand `name` to `parent` and returns it with a new Args for its
// options to fill. When the command line selects it, its callback sets
// exit_code = run(args); the callback keeps the Args alive.
template <typename Args>
std::pair<CLI::App*, std::shared_ptr<Args>> add_command(CLI::App& parent, const std::string& name,
                                                       const std::string& help, int (*run)(const Args&),
                                                       int& exit_code) {
  auto args = std::make_shared<Args>();
  CLI::App* cmd = parent.add_subcommand(name, help);
  cmd->callback([args, run, &exit_code] { exit_code = run(*args); });
  return {cmd, args};
}

}  // namespace roam::ctl
