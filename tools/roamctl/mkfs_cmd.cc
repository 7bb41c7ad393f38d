// roamctl mkfs STORE: create an empty user disk store.
#include <cstdio>
#include <string>

#include "base/backing_fs.h"
#include "fusefs/store/store.h"
#include "tools/roamctl/commands.h"

namespace roam::ctl {

namespace {

int run_mkfs(const std::string& store) {
  if (Status s = Store::create(store); !s) return fail("mkfs", s);
  std::printf("created an empty user disk store in %s\n", store.c_str());
  if (std::string w = power_loss_warning(store, backing_fs_of(store)); !w.empty())
    std::fprintf(stderr, "roamctl mkfs: warning: %s\n", w.c_str());
  return 0;
}

}  // namespace

void add_mkfs_command(CLI::App& app, int& exit_code) {
  auto [cmd, store] = add_command<std::string>(app, "mkfs", "create an empty user disk store", run_mkfs, exit_code);
  cmd->add_option("store", *store, "directory to create (must be absent or empty)")->required();
}

}  // namespace roam::ctl
