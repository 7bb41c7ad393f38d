// roamctl scrub STORE|MOUNTPOINT: verify every checksum and the store's structure.
#include <cerrno>
#include <cstdio>
#include <string>

#include "fusefs/engine/check.h"
#include "tools/roamctl/commands.h"
#include "tools/roamctl/target.h"

namespace roam::ctl {

namespace {

int run_scrub(const std::string& arg) {
  auto target = resolve_target(arg);
  if (!target) return fail("scrub", target.status());
  auto store = Store::open(target->store, {.read_only = true});
  if (!store) return fail("scrub", store.status());
  auto report = check_store(**store, true);
  if (!report) return fail("scrub", report.status());
  const CheckReport& r = *report;
  std::printf("%llu inodes (%llu live), %llu directory entries, %llu extents, %llu blobs, %llu log records\n",
              static_cast<unsigned long long>(r.inodes), static_cast<unsigned long long>(r.live_inodes),
              static_cast<unsigned long long>(r.dirents), static_cast<unsigned long long>(r.extents),
              static_cast<unsigned long long>(r.blobs), static_cast<unsigned long long>(r.log_records));
  std::printf("%llu bytes of data verified\n", static_cast<unsigned long long>(r.bytes_verified));
  for (const auto& p : r.problems) std::printf("problem: %s\n", p.c_str());
  if (!r.ok())
    return fail("scrub", Status::error(EIO, std::to_string(r.problems.size()) + " problems found in " + target->store));
  std::printf("no problems found\n");
  return 0;
}

}  // namespace

void add_scrub_command(CLI::App& app, int& exit_code) {
  auto [cmd, target] = add_command<std::string>(app, "scrub", "verify every checksum and the structure of a user disk",
                                                run_scrub, exit_code);
  add_target_argument(cmd, *target);
}

}  // namespace roam::ctl
