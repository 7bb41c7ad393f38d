// What roam-broker and roam-agent share around their event loops: the
// signals that stop them, read from a signalfd, and their main().
#pragma once

#include <signal.h>

#include <cstdio>
#include <utility>

#include "base/status.h"

namespace roam {

// SIGINT and SIGTERM.
sigset_t stop_signals();

// Blocks the stop signals in the calling thread; threads it starts later
// (ZeroMQ's I/O threads) inherit the mask, so the signals are left for a
// signalfd. Call first thing in main().
void block_stop_signals();

// A signalfd (close-on-exec, non-blocking) that reads the stop signals.
Result<int> stop_signal_fd();

// main()'s body for a daemon: blocks the stop signals, then
// Daemon::create(config) and run(); an error is one line "NAME: sentence" on
// stderr and exit status 1.
template <typename Daemon, typename Config>
int run_daemon(const char* name, Config config) {
  block_stop_signals();
  auto daemon = Daemon::create(std::move(config));
  if (!daemon) {
    std::fprintf(stderr, "%s: %s\n", name, daemon.status().message().c_str());
    return 1;
  }
  if (Status s = (*daemon)->run(); !s) {
    std::fprintf(stderr, "%s: %s\n", name, s.message().c_str());
    return 1;
  }
  return 0;
}

}  // namespace roam
