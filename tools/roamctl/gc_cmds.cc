// roamctl gc STORE|MOUNTPOINT [--json]
// roamctl df STORE|MOUNTPOINT [--json]
// roamctl retention STORE|MOUNTPOINT [--age AGE] [--space SIZE] [--json]
#include <sys/statvfs.h>

#include <cstdio>
#include <memory>

#include "fusefs/gc/gc.h"
#include "base/timefmt.h"
#include "base/backing_fs.h"
#include "tools/roamctl/commands.h"
#include "tools/roamctl/control_client.h"
#include "tools/roamctl/json.h"
#include "tools/roamctl/target.h"

namespace roam::ctl {

namespace {

struct Args {
  std::string target, age, space;
  bool json = false;
};

int fail(const char* cmd, const Status& s) {
  std::fprintf(stderr, "roamctl %s: %s\n", cmd, s.message().c_str());
  return 1;
}

int64_t figure(const control::Reply& r, const std::string& name) {
  for (const auto& [n, v] : r.figures)
    if (n == name) return v;
  return 0;
}

void print_figures_json(const control::Reply& r) {
  std::printf("{");
  for (size_t i = 0; i < r.figures.size(); ++i)
    std::printf("%s%s:%lld", i ? "," : "", json_string(r.figures[i].first).c_str(),
                static_cast<long long>(r.figures[i].second));
  std::printf("}\n");
}

// Sends `req` and returns the reply, or prints the error and returns nullopt.
std::optional<control::Reply> send(const char* cmd, const std::string& target_arg, const control::Request& req,
                                   int& rc) {
  auto target = resolve_target(target_arg);
  if (!target) return rc = fail(cmd, target.status()), std::nullopt;
  auto reply = run_control(*target, req);
  if (!reply) return rc = fail(cmd, reply.status()), std::nullopt;
  if (reply->err != 0) return rc = fail(cmd, Status::error(reply->err, reply->message)), std::nullopt;
  return std::move(*reply);
}

int run_gc(const Args& a) {
  int rc = 0;
  auto r = send("gc", a.target, control::GcCall{}, rc);
  if (!r) return rc;
  if (a.json) return print_figures_json(*r), 0;
  auto b = [&](const char* n) { return format_bytes(static_cast<uint64_t>(figure(*r, n))); };
  std::printf("dropped %lld history records, freed %lld removed files and %lld blocks (%s)\n",
              static_cast<long long>(figure(*r, "records_dropped")), static_cast<long long>(figure(*r, "inodes_freed")),
              static_cast<long long>(figure(*r, "blobs_freed")), b("bytes_freed").c_str());
  std::printf("compaction removed %lld segment files, moving %s of live data\n",
              static_cast<long long>(figure(*r, "segments_removed")), b("bytes_moved").c_str());
  std::printf("segments: %s before, %s after\n", b("before_segment_bytes").c_str(), b("after_segment_bytes").c_str());
  if (!r->message.empty()) std::printf("warning: %s\n", r->message.c_str());
  return 0;
}

int run_df(const Args& a) {
  auto target = resolve_target(a.target);
  if (!target) return fail("df", target.status());
  auto store = Store::open(target->store, {.read_only = true});
  if (!store) return fail("df", store.status());
  auto usage = space_usage(**store);
  if (!usage) return fail("df", usage.status());
  Retention retention;
  if (auto txn = (*store)->begin_read(); txn) {
    if (auto r = load_retention(*txn); r) retention = *r;
  }
  struct statvfs fs {};
  const uint64_t free_bytes =
      ::statvfs(target->store.c_str(), &fs) == 0 ? static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize : 0;
  const SpaceUsage& u = *usage;
  const BackingFs backing = backing_fs_of(target->store);
  const bool power_safe = backing.order == WriteOrder::kKept;
  if (a.json) {
    std::printf("{\"live_bytes\":%llu,\"history_bytes\":%llu,\"reclaimable_bytes\":%llu,\"segment_bytes\":%llu,"
                "\"free_bytes\":%llu,\"records\":%llu,\"oldest_ns\":%lld,\"retention_age_ns\":%lld,"
                "\"retention_history_bytes\":%llu,\"backing_fs\":%s,\"power_loss_safe\":%s}\n",
                static_cast<unsigned long long>(u.live_bytes), static_cast<unsigned long long>(u.history_bytes),
                static_cast<unsigned long long>(u.reclaimable_bytes()), static_cast<unsigned long long>(u.segment_bytes),
                static_cast<unsigned long long>(free_bytes), static_cast<unsigned long long>(u.records),
                static_cast<long long>(u.oldest_ns.value_or(0)), static_cast<long long>(retention.max_age_ns),
                static_cast<unsigned long long>(retention.max_history_bytes), json_string(describe(backing)).c_str(),
                power_safe ? "true" : "false");
    return 0;
  }
  std::printf("live data      %s\n", format_bytes(u.live_bytes).c_str());
  std::printf("history        %s in %llu operations%s\n", format_bytes(u.history_bytes).c_str(),
              static_cast<unsigned long long>(u.records),
              u.oldest_ns ? (", since " + format_time_local(*u.oldest_ns)).c_str() : "");
  std::printf("reclaimable    %s (roamctl gc)\n", format_bytes(u.reclaimable_bytes()).c_str());
  std::printf("free           %s on the storage volume\n", format_bytes(free_bytes).c_str());
  std::printf("retention      %s, history capped at %s\n", format_age(retention.max_age_ns).c_str(),
              retention.max_history_bytes ? format_bytes(retention.max_history_bytes).c_str() : "no limit");
  std::printf("power loss     %s: on %s%s\n", power_safe ? "safe" : "NOT SAFE", describe(backing).c_str(),
              power_safe ? "" : " (docs/crash-model.md)");
  return 0;
}

int run_retention(const Args& a) {
  control::RetentionCall call;
  if (!a.age.empty()) {
    auto age = parse_age(a.age);
    if (!age) return fail("retention", age.status().with_context("--age"));
    call.max_age_ns = *age;
  }
  if (!a.space.empty()) {
    auto space = parse_bytes(a.space);
    if (!space) return fail("retention", space.status().with_context("--space"));
    call.max_history_bytes = *space;
  }
  int rc = 0;
  auto r = send("retention", a.target, call, rc);
  if (!r) return rc;
  if (a.json) return print_figures_json(*r), 0;
  const auto cap = static_cast<uint64_t>(figure(*r, "max_history_bytes"));
  std::printf("history kept for %s, capped at %s\n", format_age(figure(*r, "max_age_ns")).c_str(),
              cap ? format_bytes(cap).c_str() : "no limit");
  return 0;
}

CLI::App* with_target(CLI::App* cmd, Args& a) {
  cmd->add_option("target", a.target, "store directory or mount point")->required();
  cmd->add_flag("--json", a.json, "print a JSON object");
  return cmd;
}

}  // namespace

void add_gc_commands(CLI::App& app, int& exit_code) {
  auto gc = std::make_shared<Args>();
  with_target(app.add_subcommand("gc", "free history older than retention and compact the data segments"), *gc)
      ->callback([gc, &exit_code] { exit_code = run_gc(*gc); });
  auto df = std::make_shared<Args>();
  with_target(app.add_subcommand("df", "show live data, history and free space"), *df)
      ->callback([df, &exit_code] { exit_code = run_df(*df); });
  auto ret = std::make_shared<Args>();
  auto* cmd = with_target(app.add_subcommand("retention", "show or set how much history the disk keeps"), *ret);
  cmd->add_option("--age", ret->age, "keep history this long: 30d, 12h, 90m, 0 = forever");
  cmd->add_option("--space", ret->space, "cap history at this size: 20G, 512M, 0 = no cap");
  cmd->callback([ret, &exit_code] { exit_code = run_retention(*ret); });
}

}  // namespace roam::ctl
