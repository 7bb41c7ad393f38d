#include "tools/roamctl/broker_client.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "protocol/transport.h"
#include "tools/roamctl/commands.h"
#include "tools/roamctl/json.h"

namespace roam::ctl {

void add_broker_options(CLI::App* cmd, BrokerArgs& args, bool json) {
  cmd->add_option("--broker", args.endpoint, "the broker's endpoint")->envname("ROAM_BROKER")->capture_default_str();
  cmd->add_option("--broker-key", args.broker_key, "the broker's public key (hex)")->envname("ROAM_BROKER_KEY");
  cmd->add_option("--key-file", args.key_file, "your key pair (roamctl keygen)")
      ->envname("ROAM_KEY_FILE")
      ->capture_default_str();
  cmd->add_option("--timeout", args.timeout_s, "seconds to wait for the broker")->capture_default_str();
  if (json) cmd->add_flag("--json", args.json, "print JSON for scripts");
}

uint64_t new_request_id() {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(now).count()) ^
         (static_cast<uint64_t>(::getpid()) << 48);
}

proto::HistoryRequest history_request(const std::string& user, const std::string& command) {
  proto::HistoryRequest r;
  r.request_id = new_request_id();
  r.user = user;
  r.command = command;
  return r;
}

Result<proto::Reply> ask_broker(const BrokerArgs& args, const proto::Message& request) {
  if (args.broker_key.empty())
    return Status::invalid("the broker's public key is not set (--broker-key or ROAM_BROKER_KEY)");
  ROAM_ASSIGN(auto server_key, proto::key_from_hex(args.broker_key, "the broker key"));
  ROAM_ASSIGN(auto keys, proto::read_key_file(args.key_file));
  zmq::context_t ctx;
  ROAM_ASSIGN(auto reply, proto::call(ctx, args.endpoint, keys, server_key, request,
                                      static_cast<int>(args.timeout_s * 1000)));
  ROAM_TRY(proto::status_of(reply));
  return reply;
}

int run_request(const std::string& cmd, const BrokerArgs& args, const proto::Message& request,
                const std::string& done) {
  auto reply = ask_broker(args, request);
  if (!reply) return fail(cmd, reply.status());
  if (reply->message != "ok") std::fprintf(stderr, "roamctl %s: %s\n", cmd.c_str(), reply->message.c_str());
  if (!reply->rows.empty()) print_table(*reply, args.json);
  else if (args.json) std::printf("{\"result\": %s}\n", json_string(done).c_str());
  else std::printf("%s\n", done.c_str());
  return 0;
}

int run_change_request(const std::string& cmd, const BrokerArgs& args, const proto::HistoryRequest& request) {
  auto reply = ask_broker(args, request);
  if (!reply) return fail(cmd, reply.status());
  for (size_t i = 1; i < reply->rows.size(); ++i) std::printf("%s\n", reply->rows[i].c_str());
  std::printf("%s\n", reply->message.c_str());
  return 0;
}

void add_broker_command(CLI::App& parent, const BrokerCommand& command, int& exit_code) {
  auto* cmd = parent.add_subcommand(command.name, command.help);
  auto args = std::make_shared<BrokerArgs>();
  auto value = std::make_shared<std::string>();
  if (command.arg) cmd->add_option(command.arg, *value, command.arg)->required();
  add_broker_options(cmd, *args);
  const std::string full_name = parent.get_parent() ? parent.get_name() + " " + command.name : command.name;
  cmd->callback([command, full_name, args, value, &exit_code] {
    std::string done = command.done;
    if (auto at = done.find('%'); at != std::string::npos) done.replace(at, 1, *value);
    exit_code = run_request(full_name, *args, command.request(new_request_id(), *value), done);
  });
}

void add_broker_group(CLI::App& app, const std::string& name, const std::string& help,
                      std::initializer_list<BrokerCommand> commands, int& exit_code) {
  CLI::App* group = app.add_subcommand(name, help);
  group->require_subcommand(1);
  for (const BrokerCommand& command : commands) add_broker_command(*group, command, exit_code);
}

}  // namespace roam::ctl
