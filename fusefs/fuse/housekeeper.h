// Background upkeep of a mounted disk, on its own thread:
//   - every `sync_interval`, make everything committed durable (Store::sync),
//     bounding what a power loss can take, as ext4's 5-second commit does;
//   - every `checkpoint` interval when something changed, or as soon as the
//     WAL has grown past `checkpoint_wal_bytes` (looked at every `poll`),
//     commit the changes to LMDB (Store::checkpoint): this bounds the WAL, the
//     root transaction's memory and the replay after a crash;
//   - every `trim_interval`, drop LMDB pages from roamfs's resident memory;
//   - every `gc_interval`, collect garbage (fusefs/gc): history past
//     retention, removed files, segments that are mostly garbage;
//   - every `poll`, when the storage volume is under space pressure
//     (fusefs/store/volume.h), collect garbage now: history gives way.
// Stops (and joins) in its destructor.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "fusefs/store/store.h"

namespace roam {

class Housekeeper {
 public:
  struct Intervals {
    std::chrono::milliseconds sync{5000};
    std::chrono::milliseconds checkpoint{30000};
    uint64_t checkpoint_wal_bytes = 64ull << 20;
    std::chrono::milliseconds poll{500};
    std::chrono::milliseconds trim{2000};
    std::chrono::milliseconds gc{10 * 60 * 1000};
  };
  // `is_open` tells GC which inodes have open handles; called from this thread.
  Housekeeper(Store& store, Intervals intervals, std::function<bool(uint64_t ino)> is_open);
  ~Housekeeper();
  Housekeeper(const Housekeeper&) = delete;
  Housekeeper& operator=(const Housekeeper&) = delete;

  // When the volume is under space pressure, collects garbage now (GC lets
  // history give way) and returns after it; nothing when it is not, or when
  // the last run, under 5 s ago, freed nothing. Any thread (a writer about
  // to fail with ENOSPC: Fs::set_space_hook); one run at a time.
  void relieve_space_pressure();

 private:
  void run();
  void collect_garbage();
  // One GC run; whether it freed anything.
  bool collect_garbage_now(bool only_after_expiry);

  Store& store_;
  std::function<bool(uint64_t)> is_open_;
  uint64_t gc_runs_ = 0;  // used by the housekeeping thread only
  const Intervals intervals_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;  // guarded by mu_
  std::mutex pressure_mu_;  // one relieve_space_pressure at a time
  std::chrono::steady_clock::time_point quiet_until_{};  // guarded by pressure_mu_
  std::thread thread_;
};

}  // namespace roam
