// roamctl keygen FILE: write a new CURVE key pair for a broker, an agent or an operator.
#include <cstdio>
#include <string>

#include "protocol/curve_keys.h"
#include "tools/roamctl/commands.h"

namespace roam::ctl {

namespace {

int run_keygen(const std::string& file) {
  auto keys = proto::generate_keypair();
  if (Status st = keys ? proto::write_key_file(file, *keys) : keys.status(); !st) return fail("keygen", st);
  std::printf("%s\n", proto::to_hex(keys->public_key).c_str());
  return 0;
}

}  // namespace

void add_keygen_command(CLI::App& app, int& exit_code) {
  auto [cmd, file] = add_command<std::string>(
      app, "keygen", "write a new CURVE key pair (mode 0600) and print its public key", run_keygen, exit_code);
  cmd->add_option("file", *file, "key file to create (must not exist)")->required();
}

}  // namespace roam::ctl
