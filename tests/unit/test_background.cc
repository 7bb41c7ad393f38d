// broker/background.h: work the broker's loop must not wait on runs on its
// own thread, and its completion runs on the thread that asks, when it asks.
#include <poll.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <thread>

#include "broker/background.h"

using roam::broker::Background;

namespace {

// Waits until `bg` has finished work (its fd is readable), at most 10 s.
bool wait_finished(const Background& bg) {
  pollfd p{bg.fd(), POLLIN, 0};
  return ::poll(&p, 1, 10'000) == 1;
}

}  // namespace

TEST_CASE("a job's work runs on another thread and its completion where run_finished is called", "[background]") {
  auto bg = Background::create(2);
  REQUIRE(bg);
  const auto loop = std::this_thread::get_id();
  std::thread::id worked_on, completed_on;
  REQUIRE(bg->start([&] {
    worked_on = std::this_thread::get_id();
    return Background::Completion([&] { completed_on = std::this_thread::get_id(); });
  }));
  REQUIRE(wait_finished(*bg));
  CHECK(completed_on == std::thread::id{});  // nothing runs before the loop asks
  bg->run_finished();
  CHECK(worked_on != loop);
  CHECK(completed_on == loop);
  // Drained: the fd is no longer readable, and a second call runs nothing.
  pollfd p{bg->fd(), POLLIN, 0};
  CHECK(::poll(&p, 1, 0) == 0);
  bg->run_finished();
}

TEST_CASE("a job stuck in its work holds its slot, never the caller; past the limit, EAGAIN", "[background]") {
  auto bg = Background::create(1);
  REQUIRE(bg);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  int completions = 0;
  REQUIRE(bg->start([released, &completions] {
    released.wait();  // a roamfs that does not answer
    return Background::Completion([&completions] { ++completions; });
  }));
  const auto t0 = std::chrono::steady_clock::now();
  const auto refused = bg->start([&completions] { return Background::Completion([&completions] { ++completions; }); });
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1));
  REQUIRE_FALSE(refused);
  CHECK(refused.err() == EAGAIN);
  bg->run_finished();
  CHECK(completions == 0);

  release.set_value();
  REQUIRE(wait_finished(*bg));
  bg->run_finished();
  CHECK(completions == 1);
  // The slot is free again.
  REQUIRE(bg->start([&completions] { return Background::Completion([&completions] { ++completions; }); }));
  REQUIRE(wait_finished(*bg));
  bg->run_finished();
  CHECK(completions == 2);
}

TEST_CASE("jobs still running when the Background goes away finish without touching it", "[background]") {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> finished{false};
  {
    auto bg = Background::create(1);
    REQUIRE(bg);
    REQUIRE(bg->start([released, &finished] {
      released.wait();
      finished = true;
      return Background::Completion([] {});
    }));
  }
  release.set_value();
  for (int i = 0; i < 1000 && !finished; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(finished);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // its queueing too, under ASan
}
