// roamctl's subcommands. Each add_*_command registers its options on `app`
// and sets the callback that runs it; a command reports errors as one sentence
// on stderr and returns a non-zero exit code through `exit_code`.
#pragma once

#include <CLI/CLI.hpp>

namespace roam::ctl {

void add_mkfs_command(CLI::App& app, int& exit_code);
void add_log_command(CLI::App& app, int& exit_code);
void add_scrub_command(CLI::App& app, int& exit_code);
void add_restore_command(CLI::App& app, int& exit_code);
void add_history_command(CLI::App& app, int& exit_code);
void add_gc_commands(CLI::App& app, int& exit_code);  // gc, df, retention
void add_keygen_command(CLI::App& app, int& exit_code);
void add_switch_command(CLI::App& app, int& exit_code);
// status, audit, desktop create|list|remove, disk create|list, user add|list
void add_registry_commands(CLI::App& app, int& exit_code);

}  // namespace roam::ctl
