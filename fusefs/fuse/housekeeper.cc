#include "fusefs/fuse/housekeeper.h"

#include <syslog.h>

namespace roam {

Housekeeper::Housekeeper(Store& store, Intervals intervals)
    : store_(store), intervals_(intervals), thread_([this] { run(); }) {}

Housekeeper::~Housekeeper() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Housekeeper::run() {
  using clock = std::chrono::steady_clock;
  auto next_sync = clock::now() + intervals_.sync;
  auto next_trim = clock::now() + intervals_.trim;
  std::unique_lock lock(mu_);
  while (!stop_) {
    wake_.wait_until(lock, std::min(next_sync, next_trim), [this] { return stop_; });
    if (stop_) break;
    lock.unlock();
    const auto now = clock::now();
    if (now >= next_sync) {
      if (Status s = store_.sync(); !s) syslog(LOG_ERR, "roamfs: periodic sync failed: %s", s.message().c_str());
      next_sync = now + intervals_.sync;
    }
    if (now >= next_trim) {
      store_.trim_resident_memory();
      next_trim = now + intervals_.trim;
    }
    lock.lock();
  }
}

}  // namespace roam
