// roamctl keygen FILE: write a new CURVE key pair for a broker, an agent or an operator.
#include <cstdio>
#include <memory>

#include "protocol/curve_keys.h"
#include "tools/roamctl/commands.h"

namespace roam::ctl {

void add_keygen_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("keygen", "write a new CURVE key pair (mode 0600) and print its public key");
  auto file = std::make_shared<std::string>();
  cmd->add_option("file", *file, "key file to create (must not exist)")->required();
  cmd->callback([file, &exit_code] {
    auto keys = proto::generate_keypair();
    Status st = keys ? proto::write_key_file(*file, *keys) : keys.status();
    if (!st) {
      std::fprintf(stderr, "roamctl keygen: %s\n", st.message().c_str());
      exit_code = 1;
      return;
    }
    std::printf("%s\n", proto::to_hex(keys->public_key).c_str());
  });
}

}  // namespace roam::ctl
