// Crash consistency (promise 5): SIGKILL roamfs at a random moment while a
// workload runs, remount the same store with no repair step, and check that
//  - the mount succeeds;
//  - every file the workload fsync'd is there with exactly its content (the
//    workload records a file outside the mount only after fsync returns, and
//    never touches it again), and the op log has its create;
//  - `roamctl scrub STORE` passes: every checksum verifies, structure consistent;
//  - `roamctl log` works.
// Each round works in its own directory; files of earlier rounds are checked
// again after every later crash.
//
// ROAM_CRASH_ROUNDS (default 20) and ROAM_SEED (default fixed) tune it; the
// seed is printed and shown with every failure.
#include <sys/stat.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <random>
#include <thread>

#include "crash_workload.h"
#include "posix_helpers.h"

using namespace roamtest;

TEST_CASE("SIGKILL of roamfs loses nothing fsync'd and needs no repair", "[crash]") {
  const uint64_t seed = env_u64("ROAM_SEED", 5150);
  const int rounds = static_cast<int>(env_u64("ROAM_CRASH_ROUNDS", 20));
  std::printf("crash: ROAM_SEED=%" PRIu64 " ROAM_CRASH_ROUNDS=%d\n", seed, rounds);
  std::fflush(stdout);
  INFO("reproduce with ROAM_SEED=" << seed << " ROAM_CRASH_ROUNDS=" << rounds);
  std::mt19937_64 rng(seed);

  MountFixture fx;
  std::vector<Durable> durable;
  const auto start = std::chrono::steady_clock::now();
  for (int round = 0; round < rounds; ++round) {
    INFO("round " << round);
    const std::string rel = "r" + std::to_string(round);
    REQUIRE(::mkdir(fx.path(rel).c_str(), 0755) == 0);
    const std::string records = fx.dir() + "/durable-" + std::to_string(round) + ".txt";
    const uint64_t wseed = rng();
    Churn churn(fx.mnt(), rel, records, wseed, 39);

    const auto delay = std::chrono::milliseconds(10 + rng() % 491);
    std::this_thread::sleep_for(delay);
    fx.kill9();  // SIGKILL roamfs, reap it, lazily unmount
    auto fresh = churn.stop(round);
    durable.insert(durable.end(), fresh.begin(), fresh.end());

    // No repair step: mount the same store again.
    fx.mount();

    const AfterCrash after = check_after_crash(fx, durable, round);
    std::printf("crash round %2d: killed after %3lld ms; %zu durable files from this round, %zu in all; %zu entries; "
                "%zu log records\n",
                round, static_cast<long long>(delay.count()), fresh.size(), durable.size(), after.entries,
                after.log_records);
    std::fflush(stdout);
  }
  // A clean unmount at the end, and a last scrub of the store at rest.
  fx.unmount();
  ProcResult scrub = roamctl({"scrub", fx.store()});
  INFO(scrub.describe());
  CHECK(scrub.exit_code() == 0);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("crash: %d rounds, %zu durable files verified, %.1f s\n", rounds, durable.size(), secs);
}
