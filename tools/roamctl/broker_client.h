// How roamctl's broker commands reach the broker: the connection options
// every such command takes, one request/reply exchange, and printing a
// reply's table for people or as JSON for scripts.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "protocol/protocol.h"

namespace roam::ctl {

struct BrokerArgs {
  std::string endpoint = "tcp://127.0.0.1:5555";
  std::string broker_key;  // hex
  std::string key_file = "/etc/roamdisk/operator.key";
  double timeout_s = 10;
  bool json = false;
};

// Adds --broker, --broker-key, --key-file, --timeout and --json to `cmd`
// (each also read from ROAM_BROKER, ROAM_BROKER_KEY, ROAM_KEY_FILE).
void add_broker_options(CLI::App* cmd, BrokerArgs& args);

// Sends `request` and waits for its reply. A transport failure or an error
// reply is a Status whose message is one sentence for the user.
Result<proto::Reply> ask_broker(const BrokerArgs& args, const proto::Message& request);

// Prints the reply's rows (rows[0] is the header) as an aligned table, or as
// a JSON array of objects when args.json.
void print_table(const proto::Reply& reply, bool json);

// Runs `request`, prints its table (or `done` when it has none), and returns
// the exit code; errors go to stderr as "roamctl CMD: sentence".
int run_request(const std::string& cmd, const BrokerArgs& args, const proto::Message& request,
                const std::string& done);

// A request id that is unique enough for one roamctl process.
uint64_t new_request_id();

}  // namespace roam::ctl
