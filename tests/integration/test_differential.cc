// Differential test: the same seeded random operations, done with ordinary
// system calls on a roamfs mount and on a plain directory under /tmp, must give
// the same results (each call's return value and errno), and the two trees must
// stay identical: names, types, contents, mode, owner, size, link counts,
// user.* xattrs, symlink targets, hard-link structure. Compared every ~300 ops,
// at the end, and once more after a remount (so that what roamfs stored, not
// only what the kernel cached, is compared), followed by `roamctl scrub`.
//
// ROAM_DIFF_OPS scales the run (default 3000); ROAM_SEED picks the seed
// (default fixed). The seed is printed, and shown with every failure.
#include <sys/stat.h>

#include <cinttypes>
#include <cstdio>
#include <map>

#include "differential.h"
#include "posix_helpers.h"

using namespace roamtest;

TEST_CASE("random operations give the same results on roamfs and on a plain directory", "[differential]") {
  const uint64_t seed = env_u64("ROAM_SEED", 20261127);
  const uint64_t ops = env_u64("ROAM_DIFF_OPS", 3000);
  std::printf("differential: ROAM_SEED=%" PRIu64 " ROAM_DIFF_OPS=%" PRIu64 "\n", seed, ops);
  std::fflush(stdout);
  INFO("reproduce with ROAM_SEED=" << seed << " ROAM_DIFF_OPS=" << ops);

  ScopedUmask umask0(0);
  MountFixture fx;
  const TempTree ref_tree("diffref");
  const std::string& ref = ref_tree.path;
  ::chmod(ref.c_str(), 0755);  // the same root mode as the mount's

  Lockstep run(seed, fx.mnt(), ref);
  std::map<std::string, int> failures_by_kind, ops_by_kind;
  for (uint64_t i = 0; i < ops; ++i) {
    const auto [op, result] = run.step();
    ++ops_by_kind[kind_name(op.kind)];
    if (result.find("=-") != std::string::npos) ++failures_by_kind[kind_name(op.kind)];
    if ((i + 1) % 300 == 0) run.compare("after op #" + std::to_string(i));
  }
  const size_t entries = run.compare("at the end").size();
  std::printf("differential: %zu entries in the final tree\n", entries);
  for (const auto& [k, n] : ops_by_kind)
    std::printf("  %-12s %5d ops, %5d failed on both sides\n", k.c_str(), n, failures_by_kind[k]);

  // What roamfs stored, not only what the kernel cached.
  fx.remount();
  run.compare("after a remount");
  fx.unmount();
  ProcResult scrub = roamctl({"scrub", fx.store()});
  INFO(scrub.describe());
  CHECK(scrub.exit_code() == 0);
}
