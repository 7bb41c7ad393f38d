// roamctl df STORE|MOUNTPOINT [--json]: live data, history and free space of a disk.
#include <sys/statvfs.h>

#include <cstdint>
#include <optional>
#include <cstdio>
#include <string>

#include "base/backing_fs.h"
#include "base/timefmt.h"
#include "fusefs/gc/gc.h"
#include "tools/roamctl/commands.h"
#include "tools/roamctl/control_client.h"
#include "tools/roamctl/json.h"
#include "tools/roamctl/target.h"

namespace roam::ctl {

namespace {

int run_df(const TargetJsonArgs& a) {
  auto target = resolve_target(a.target);
  if (!target) return fail("df", target.status());
  auto store = open_for_reading(*target);
  if (!store) return fail("df", store.status());
  auto usage = space_usage(**store);
  if (!usage) return fail("df", usage.status());
  Retention retention;
  uint64_t quota = 0;
  uint64_t file_bytes = 0;  // the files' sizes summed: what the quota counts
  std::optional<PressureTrim> trim;
  if (auto txn = (*store)->begin_read(); txn) {
    if (auto r = load_retention(*txn); r) retention = *r;
    if (auto q = txn->quota_bytes(); q) quota = *q;
    if (auto f = txn->live_bytes(); f) file_bytes = *f;
    if (auto t = load_pressure_trim(*txn); t) trim = *t;
  }
  struct statvfs fs {};
  const uint64_t free_bytes =
      ::statvfs(target->store.c_str(), &fs) == 0 ? static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize : 0;
  const SpaceUsage& u = *usage;
  const BackingFs backing = backing_fs_of(target->store);
  const bool power_safe = backing.power_loss == PowerLoss::kSafe;
  if (a.json) {
    std::printf("{\"live_bytes\":%llu,\"file_bytes\":%llu,\"history_bytes\":%llu,\"reclaimable_bytes\":%llu,\"segment_bytes\":%llu,"
                "\"free_bytes\":%llu,\"records\":%llu,\"oldest_ns\":%lld,\"retention_age_ns\":%lld,"
                "\"retention_history_bytes\":%llu,\"retention_min_window_ns\":%lld,\"quota_bytes\":%llu,"
                "\"pressure_trim_ns\":%lld,\"pressure_kept_from_ns\":%lld,\"backing_fs\":%s,\"power_loss_safe\":%s}\n",
                static_cast<unsigned long long>(u.live_bytes), static_cast<unsigned long long>(file_bytes),
                static_cast<unsigned long long>(u.history_bytes),
                static_cast<unsigned long long>(u.reclaimable_bytes()), static_cast<unsigned long long>(u.segment_bytes),
                static_cast<unsigned long long>(free_bytes), static_cast<unsigned long long>(u.records),
                static_cast<long long>(u.oldest_ns.value_or(0)), static_cast<long long>(retention.max_age_ns),
                static_cast<unsigned long long>(retention.max_history_bytes),
                static_cast<long long>(retention.min_window_ns), static_cast<unsigned long long>(quota),
                static_cast<long long>(trim ? trim->at_ns : 0), static_cast<long long>(trim ? trim->kept_from_ns : 0),
                json_string(describe(backing)).c_str(),
                power_safe ? "true" : "false");
    return 0;
  }
  // Copies share blobs (copy_file_range): the files then hold more than the
  // data stored for them, and the quota counts the files.
  const bool shared = file_bytes > u.live_bytes;
  std::printf("live data      %s%s%s\n", format_bytes(u.live_bytes).c_str(),
              shared ? (", " + format_bytes(file_bytes) + " in files (copies share data)").c_str() : "",
              quota ? (" (quota " + format_bytes(quota) + " on the files)").c_str() : "");
  std::printf("history        %s in %llu operations%s\n", format_bytes(u.history_bytes).c_str(),
              static_cast<unsigned long long>(u.records),
              u.oldest_ns ? (", since " + format_time_local(*u.oldest_ns)).c_str() : "");
  std::printf("reclaimable    %s (roamctl gc)\n", format_bytes(u.reclaimable_bytes()).c_str());
  std::printf("free           %s on the storage volume\n", format_bytes(free_bytes).c_str());
  std::printf("retention      %s, history capped at %s, at least %s kept under space pressure\n",
              format_age(retention.max_age_ns).c_str(),
              retention.max_history_bytes ? format_bytes(retention.max_history_bytes).c_str() : "no limit",
              retention.min_window_ns > 0 ? format_age(retention.min_window_ns).c_str() : "nothing");
  if (trim)
    std::printf("trimmed        history trimmed by space pressure at %s, to %s\n", format_time_local(trim->at_ns).c_str(),
                trim->kept_from_ns ? ("records since " + format_time_local(trim->kept_from_ns)).c_str() : "no records");
  const char* verdict = power_safe                                      ? "safe"
                        : backing.power_loss == PowerLoss::kVolatile ? "DISK LOST at restart"
                                                                     : "NOT VERIFIED";
  std::printf("power loss     %s: on %s%s\n", verdict, describe(backing).c_str(),
              power_safe ? "" : " (docs/crash-model.md)");
  return 0;
}

}  // namespace

void add_df_command(CLI::App& app, int& exit_code) {
  auto [cmd, a] = add_command<TargetJsonArgs>(app, "df", "show live data, history and free space", run_df, exit_code);
  add_target_argument(cmd, a->target);
  cmd->add_flag("--json", a->json, "print a JSON object");
}

}  // namespace roam::ctl
