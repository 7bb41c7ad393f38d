#include "base/sys/daemon.h"

#include <pthread.h>
#include <sys/signalfd.h>

#include <cerrno>

namespace roam {

sigset_t stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  return signals;
}

void block_stop_signals() {
  const sigset_t signals = stop_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

Result<int> stop_signal_fd() {
  const sigset_t signals = stop_signals();
  const int fd = ::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) return Status::error(errno, "cannot create a signalfd");
  return fd;
}

}  // namespace roam
