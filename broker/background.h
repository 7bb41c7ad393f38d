// Work the broker's event loop must never wait on (a roamfs's control socket,
// syncfs of a FUSE mount: a hung or SIGSTOPped roamfs would stop heartbeats,
// switches and every other request), each run on a thread of its own. A job
// is two parts: `work`, on its thread, which must touch nothing of the
// broker's (it gets copies), and the completion it returns, which the loop
// runs on its own thread (so it may use the registry and the sockets).
//
// Threading: start() and run_finished() on the loop's thread only. Job
// threads are detached and share the finished queue (and its eventfd) by
// shared_ptr: a roamfs that never answers holds one thread, never the loop
// nor the broker's shutdown. Lock: Shared::mu, held only to queue or take.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "base/status.h"

namespace roam::broker {

class Background {
 public:
  using Completion = std::function<void()>;
  using Work = std::function<Completion()>;

  // At most `max_running` jobs at once. Errors: the eventfd's.
  static Result<Background> create(size_t max_running);

  // Readable while finished jobs wait for run_finished(); poll it.
  int fd() const;
  // Starts `work` on a new thread. EAGAIN (nothing started) while
  // max_running jobs are still running; the errno of thread creation.
  Status start(Work work);
  // Runs the completions of the jobs finished so far, oldest first.
  void run_finished();

 private:
  struct Shared;
  explicit Background(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}
  std::shared_ptr<Shared> shared_;
};

}  // namespace roam::broker
