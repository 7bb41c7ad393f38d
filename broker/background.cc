#include "broker/background.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace roam::broker {

struct Background::Shared {
  explicit Shared(int event_fd, size_t max) : efd(event_fd), max_running(max) {}
  ~Shared() { ::close(efd); }
  Shared(const Shared&) = delete;
  Shared& operator=(const Shared&) = delete;

  const int efd;  // counts finished jobs not yet taken
  const size_t max_running;
  std::mutex mu;
  size_t running = 0;  // started, completion not yet queued
  std::vector<Completion> finished;
};

Result<Background> Background::create(size_t max_running) {
  const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) return Status::error(errno, std::string("eventfd: ") + std::strerror(errno));
  return Background(std::make_shared<Shared>(efd, max_running));
}

int Background::fd() const { return shared_->efd; }

Status Background::start(Work work) {
  {
    std::lock_guard lock(shared_->mu);
    if (shared_->running >= shared_->max_running)
      return Status::error(EAGAIN, "the broker is busy with " + std::to_string(shared_->running) +
                                       " requests to roamfs; retry in a moment");
    ++shared_->running;
  }
  try {
    std::thread([shared = shared_, work = std::move(work)]() {
      Completion done = work();
      {
        std::lock_guard lock(shared->mu);
        shared->finished.push_back(std::move(done));
        --shared->running;
      }
      const uint64_t one = 1;
      (void)!::write(shared->efd, &one, sizeof one);  // cannot fail short of 2^64 - 1 unread jobs
    }).detach();
  } catch (const std::system_error& e) {
    std::lock_guard lock(shared_->mu);
    --shared_->running;
    return Status::error(e.code().value(), std::string("cannot start a thread: ") + e.what());
  }
  return Status::ok();
}

void Background::run_finished() {
  uint64_t count = 0;
  (void)!::read(shared_->efd, &count, sizeof count);  // EAGAIN when already drained
  std::vector<Completion> finished;
  {
    std::lock_guard lock(shared_->mu);
    finished.swap(shared_->finished);
  }
  for (Completion& done : finished) done();
}

}  // namespace roam::broker
