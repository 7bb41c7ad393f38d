#include "fusefs/fuse/housekeeper.h"

#include <syslog.h>

#include <algorithm>

#include "fusefs/gc/gc.h"
#include "base/timefmt.h"

namespace roam {

Housekeeper::Housekeeper(Store& store, Intervals intervals, std::function<bool(uint64_t)> is_open)
    : store_(store), is_open_(std::move(is_open)), intervals_(intervals), thread_([this] { run(); }) {}

void Housekeeper::collect_garbage() {
  GcOptions options;
  options.now_ns = wall_clock_ns();
  options.is_open = is_open_;
  options.measure = false;
  // The first run after mount does every step (a crash may have left a
  // segment to delete); later ones only when some history has aged out.
  options.only_after_expiry = gc_runs_++ > 0;
  auto report = roam::collect_garbage(store_, options);
  if (!report) {
    syslog(LOG_ERR, "roamfs: garbage collection failed: %s", report.status().message().c_str());
    return;
  }
  for (const auto& p : report->problems) syslog(LOG_ERR, "roamfs: garbage collection: %s", p.c_str());
  if (report->records_dropped || report->segments_removed)
    syslog(LOG_INFO, "roamfs: gc dropped %llu records, freed %llu bytes, removed %llu segments",
           static_cast<unsigned long long>(report->records_dropped),
           static_cast<unsigned long long>(report->bytes_freed),
           static_cast<unsigned long long>(report->segments_removed));
}

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
  auto next_checkpoint = clock::now() + intervals_.checkpoint;
  auto next_trim = clock::now() + intervals_.trim;
  auto next_gc = clock::now() + intervals_.gc;
  std::unique_lock lock(mu_);
  while (!stop_) {
    const auto next_poll = clock::now() + intervals_.poll;
    wake_.wait_until(lock, std::min({next_sync, next_trim, next_gc, next_poll}), [this] { return stop_; });
    if (stop_) break;
    lock.unlock();
    const auto now = clock::now();
    if ((now >= next_checkpoint && store_.changed_since_checkpoint()) ||
        store_.wal_bytes_past(intervals_.checkpoint_wal_bytes)) {
      if (Status s = store_.checkpoint(); !s) syslog(LOG_ERR, "roamfs: checkpoint failed: %s", s.message().c_str());
      next_checkpoint = now + intervals_.checkpoint;
    }
    if (now >= next_sync) {
      if (Status s = store_.sync(); !s) syslog(LOG_ERR, "roamfs: periodic sync failed: %s", s.message().c_str());
      next_sync = now + intervals_.sync;
    }
    if (now >= next_trim) {
      store_.trim_resident_memory();
      next_trim = now + intervals_.trim;
    }
    if (now >= next_gc) {
      collect_garbage();
      next_gc = clock::now() + intervals_.gc;
    }
    lock.lock();
  }
}

}  // namespace roam
