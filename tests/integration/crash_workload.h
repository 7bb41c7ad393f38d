// The workload of the crash tests (SIGKILL of roamfs, and a simulated power
// loss): random creates, overwrites, renames, deletes, truncates and mkdirs in
// one directory of a mount, plus "durable" files that are written, fsync'd,
// recorded outside the mount and never touched again; and the checks that
// follow a crash.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mount_fixture.h"

namespace roamtest {

// Runs in a forked child until killed or until the mount fails under it
// (then exits 0). `rel` is its directory relative to the mount root; each
// durable file is appended to `records` as "PATH SIZE FNV1A" after its fsync.
// `durable_percent` of the steps make a durable file; fewer means longer
// stretches of churn between syncs.
[[noreturn]] void churn_workload(const std::string& mnt, const std::string& rel, const std::string& records,
                                 uint64_t seed, unsigned durable_percent);

struct Durable {
  std::string path;  // relative to the mount root
  size_t size = 0;
  uint64_t hash = 0;
  int round = 0;
};

// The durable files a workload recorded (none if it never wrote the file).
std::vector<Durable> parse_records(const std::string& file, int round);

// A churn_workload in a forked child, in directory `rel` of the mount.
class Churn {
 public:
  Churn(const std::string& mnt, const std::string& rel, std::string records, uint64_t seed, unsigned durable_percent);
  ~Churn();  // kills and reaps it if stop() was not called
  Churn(const Churn&) = delete;
  Churn& operator=(const Churn&) = delete;

  // Kills and reaps it (REQUIREs that it had not failed on its own) and
  // returns the durable files it recorded.
  std::vector<Durable> stop(int round);

 private:
  pid_t child_ = -1;
  std::string records_;
};

struct AfterCrash {
  size_t entries = 0;      // files and directories on the disk
  size_t log_records = 0;  // records in the op log
};

// On a disk mounted again after a crash, with no repair step: every durable
// file has exactly its content and a create in the op log, the op log is in
// seq order, every entry can be stat'ed, and `roamctl scrub` passes.
AfterCrash check_after_crash(MountFixture& fx, const std::vector<Durable>& durable, int round);

}  // namespace roamtest
