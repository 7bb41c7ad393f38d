// roamctl gc STORE|MOUNTPOINT [--json]: free the history older than the
// retention and compact the data segments.
#include <cstdint>
#include <cstdio>
#include <string>

#include "fusefs/gc/retention.h"
#include "tools/roamctl/commands.h"
#include "tools/roamctl/control_client.h"

namespace roam::ctl {

namespace {

int run_gc(const TargetJsonArgs& a) {
  auto r = run_control(a.target, control::GcCall{});
  if (!r) return fail("gc", r.status());
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

}  // namespace

void add_gc_command(CLI::App& app, int& exit_code) {
  auto [cmd, a] = add_command<TargetJsonArgs>(app, "gc", "free history older than retention and compact the data segments",
                                      run_gc, exit_code);
  add_target_argument(cmd, a->target);
  cmd->add_flag("--json", a->json, "print a JSON object");
}

}  // namespace roam::ctl
