// roamctl scrub STORE|MOUNTPOINT: verify every checksum and the store's structure.
#include <cstdio>
#include <memory>

#include "fusefs/engine/check.h"
#include "tools/roamctl/commands.h"
#include "tools/roamctl/target.h"

namespace roam::ctl {

namespace {

int run_scrub(const std::string& arg) {
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "roamctl scrub: %s\n", s.message().c_str());
    return 1;
  };
  auto target = resolve_target(arg);
  if (!target) return fail(target.status());
  auto store = Store::open(target->store, {.read_only = true});
  if (!store) return fail(store.status());
  auto report = check_store(**store, true);
  if (!report) return fail(report.status());
  const CheckReport& r = *report;
  std::printf("%llu inodes (%llu live), %llu directory entries, %llu extents, %llu blobs, %llu log records\n",
              static_cast<unsigned long long>(r.inodes), static_cast<unsigned long long>(r.live_inodes),
              static_cast<unsigned long long>(r.dirents), static_cast<unsigned long long>(r.extents),
              static_cast<unsigned long long>(r.blobs), static_cast<unsigned long long>(r.log_records));
  std::printf("%llu bytes of data verified\n", static_cast<unsigned long long>(r.bytes_verified));
  for (const auto& p : r.problems) std::printf("problem: %s\n", p.c_str());
  if (!r.ok()) {
    std::fprintf(stderr, "roamctl scrub: %zu problems found in %s\n", r.problems.size(), target->store.c_str());
    return 1;
  }
  std::printf("no problems found\n");
  return 0;
}

}  // namespace

void add_scrub_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("scrub", "verify every checksum and the structure of a user disk");
  auto target = std::make_shared<std::string>();
  cmd->add_option("target", *target, "store directory or mount point")->required();
  cmd->callback([target, &exit_code] { exit_code = run_scrub(*target); });
}

}  // namespace roam::ctl
