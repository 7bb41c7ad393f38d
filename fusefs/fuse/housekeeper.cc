#include "fusefs/fuse/housekeeper.h"

#include <syslog.h>

#include <algorithm>

#include "fusefs/gc/gc.h"
#include "fusefs/store/volume.h"
#include "base/timefmt.h"

namespace roam {

Housekeeper::Housekeeper(Store& store, Intervals intervals, std::function<bool(uint64_t)> is_open)
    : store_(store), is_open_(std::move(is_open)), intervals_(intervals), thread_([this] { run(); }) {}

void Housekeeper::collect_garbage() {
  // The first run after mount does every step (a crash may have left a
  // segment to delete); later ones only when some history has aged out.
  collect_garbage_now(gc_runs_++ > 0);
}

bool Housekeeper::collect_garbage_now(bool only_after_expiry) {
  GcOptions options;
  options.now_ns = wall_clock_ns();
  options.is_open = is_open_;
  options.measure = false;
  options.only_after_expiry = only_after_expiry;
  auto report = roam::collect_garbage(store_, options);
  if (!report) {
    syslog(LOG_ERR, "roamfs: garbage collection failed: %s", report.status().message().c_str());
    return false;
  }
  for (const auto& p : report->problems) syslog(LOG_ERR, "roamfs: garbage collection: %s", p.c_str());
  if (report->pressure_dropped)
    syslog(LOG_WARNING, "roamfs: the storage volume is nearly full: gc dropped %llu records of history",
           static_cast<unsigned long long>(report->pressure_dropped));
  if (report->records_dropped || report->segments_removed)
    syslog(LOG_INFO, "roamfs: gc dropped %llu records, freed %llu bytes, removed %llu segments",
           static_cast<unsigned long long>(report->records_dropped),
           static_cast<unsigned long long>(report->bytes_freed),
           static_cast<unsigned long long>(report->segments_removed));
  return report->records_dropped || report->inodes_freed || report->blobs_freed || report->segments_removed;
}

void Housekeeper::relieve_space_pressure() {
  std::lock_guard one_at_a_time(pressure_mu_);
  auto space = volume_space(store_.dir());
  if (!space || space->avail >= pressure_mark(space->total)) return;  // freed by the run this one waited for
  const auto now = std::chrono::steady_clock::now();
  if (now < quiet_until_) return;
  // Nothing freed: history is down to the minimum window, or held by open
  // files; do not scan the store again for every write that fails.
  quiet_until_ = collect_garbage_now(false) ? now : now + std::chrono::seconds(5);
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
    relieve_space_pressure();
    if (now >= next_gc) {
      collect_garbage();
      next_gc = clock::now() + intervals_.gc;
    }
    lock.lock();
  }
}

}  // namespace roam
