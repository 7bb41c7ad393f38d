// How roamctl's broker commands reach the broker: the connection options
// every such command takes, one request/reply exchange, printing a reply's
// table for people or as JSON for scripts, and the commands that are just
// that (status, audit, desktop ..., disk ..., user ...).
#pragma once

#include <CLI/CLI.hpp>

#include <initializer_list>
#include <memory>
#include <string>

#include "protocol/protocol.h"
#include "protocol/table.h"

namespace roam::ctl {

struct BrokerArgs {
  std::string endpoint = "tcp://127.0.0.1:5555";
  std::string broker_key;  // hex
  std::string key_file = "/etc/roamdisk/operator.key";
  double timeout_s = 10;
  bool json = false;
};

// Adds --broker, --broker-key, --key-file, --timeout and (with `json`)
// --json to `cmd` (each also read from ROAM_BROKER, ROAM_BROKER_KEY,
// ROAM_KEY_FILE). A command with a --json of its own passes json = false.
void add_broker_options(CLI::App* cmd, BrokerArgs& args, bool json = true);

// Sends `request` and waits for its reply. A transport failure or an error
// reply is a Status whose message is one sentence for the user.
Result<proto::Reply> ask_broker(const BrokerArgs& args, const proto::Message& request);

// Prints the reply's rows (protocol/table.h).
using proto::print_table;

// Runs `request`, prints its table (or `done` when it has none), and returns
// the exit code; errors go to stderr as "roamctl CMD: sentence".
int run_request(const std::string& cmd, const BrokerArgs& args, const proto::Message& request,
                const std::string& done);

// Runs a history request that changes the disk (restore, undo): prints one
// line per change (the reply's rows after the header), then the broker's
// sentence; returns the exit code.
int run_change_request(const std::string& cmd, const BrokerArgs& args, const proto::HistoryRequest& request);

// A request id that is unique enough for one roamctl process.
uint64_t new_request_id();

// A history request (docs/broker-protocol.md) of `command` on `user`'s
// disk, with a new request id; the caller fills in the command's fields.
proto::HistoryRequest history_request(const std::string& user, const std::string& command);

// A broker command that sends one request and prints the reply's table.
struct BrokerCommand {
  const char* name;
  const char* help;
  const char* arg;  // the name of its one positional argument; nullptr: none
  proto::Message (*request)(uint64_t id, const std::string& arg);
  const char* done;  // printed when the reply has no table; '%' stands for the argument
};

// Adds `command` to `parent` (the app, or a group such as `desktop`) with
// the broker options; errors are reported as "roamctl PARENT NAME: ...".
void add_broker_command(CLI::App& parent, const BrokerCommand& command, int& exit_code);

// Adds the group `name` (one of its commands must be given) with `commands`.
void add_broker_group(CLI::App& app, const std::string& name, const std::string& help,
                      std::initializer_list<BrokerCommand> commands, int& exit_code);

// BrokerCommand::request for a message that holds only the request id.
template <typename M>
proto::Message request_of(uint64_t id, const std::string&) {
  return M{id};
}
// BrokerCommand::request for a message that names one thing (a desktop, a user).
template <typename M>
proto::Message request_naming(uint64_t id, const std::string& name) {
  return M{id, name};
}

}  // namespace roam::ctl
