// For a forked child about to exec: the broker and the agent block SIGINT
// and SIGTERM in every thread (they read them from a signalfd), and a blocked
// mask survives exec. Without this, roamfs would ignore the SIGTERM that asks
// it to unmount, and a desktop started by the provisioner could not be stopped.
#pragma once

#include <signal.h>

namespace roam {

inline void unblock_signals_for_exec() {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

}  // namespace roam
