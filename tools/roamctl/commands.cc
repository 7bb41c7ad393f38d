#include "tools/roamctl/commands.h"

#include <cstdio>

namespace roam::ctl {

int fail(std::string_view cmd, const Status& s, int exit_code) {
  std::fprintf(stderr, "roamctl %.*s: %s\n", static_cast<int>(cmd.size()), cmd.data(), s.message().c_str());
  return exit_code;
}

CLI::Option* add_target_argument(CLI::App* cmd, std::string& target) {
  return cmd->add_option("target", target, "store directory or mount point")->required();
}

}  // namespace roam::ctl
