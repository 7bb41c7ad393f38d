// Background upkeep of a mounted disk, on its own thread:
//   - every `sync_interval`, make everything committed durable (Store::sync),
//     bounding what a power loss can take, as ext4's 5-second commit does;
//   - every `trim_interval`, drop LMDB pages from roamfs's resident memory;
//   - every `gc_interval`, collect garbage (fusefs/gc): history past
//     retention, removed files, segments that are mostly garbage.
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
    std::chrono::milliseconds trim{2000};
    std::chrono::milliseconds gc{10 * 60 * 1000};
  };
  // `is_open` tells GC which inodes have open handles; called from this thread.
  Housekeeper(Store& store, Intervals intervals, std::function<bool(uint64_t ino)> is_open);
  ~Housekeeper();
  Housekeeper(const Housekeeper&) = delete;
  Housekeeper& operator=(const Housekeeper&) = delete;

 private:
  void run();
  void collect_garbage();

  Store& store_;
  std::function<bool(uint64_t)> is_open_;
  uint64_t gc_runs_ = 0;  // used by the housekeeping thread only
  const Intervals intervals_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace roam
