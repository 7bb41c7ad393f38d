// roamctl retention STORE|MOUNTPOINT [--age AGE] [--space SIZE] [--min-window AGE] [--json]:
// show, or set, how much history the disk keeps (and keeps under space pressure).
#include <cstdint>
#include <cstdio>
#include <string>

#include "fusefs/gc/retention.h"
#include "tools/roamctl/commands.h"
#include "tools/roamctl/control_client.h"

namespace roam::ctl {

namespace {

struct RetentionArgs {
  std::string target, age, space, min_window;
  bool json = false;
};

int run_retention(const RetentionArgs& a) {
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
  if (!a.min_window.empty()) {
    auto window = parse_age(a.min_window);
    if (!window) return fail("retention", window.status().with_context("--min-window"));
    call.min_window_ns = *window;
  }
  auto r = run_control(a.target, call);
  if (!r) return fail("retention", r.status());
  if (a.json) return print_figures_json(*r), 0;
  const auto cap = static_cast<uint64_t>(figure(*r, "max_history_bytes"));
  std::printf("history kept for %s, capped at %s\n", format_age(figure(*r, "max_age_ns")).c_str(),
              cap ? format_bytes(cap).c_str() : "no limit");
  const int64_t window = figure(*r, "min_window_ns");
  std::printf("when the storage volume nears full, history gives way oldest first, %s\n",
              window > 0 ? ("except the last " + format_age(window)).c_str() : "all of it if need be");
  return 0;
}

}  // namespace

void add_retention_command(CLI::App& app, int& exit_code) {
  auto [cmd, a] = add_command<RetentionArgs>(app, "retention", "show or set how much history the disk keeps",
                                             run_retention, exit_code);
  add_target_argument(cmd, a->target);
  cmd->add_flag("--json", a->json, "print a JSON object");
  cmd->add_option("--age", a->age, "keep history this long: 30d, 12h, 90m, 0 = forever");
  cmd->add_option("--space", a->space, "cap history at this size: 20G, 512M, 0 = no cap");
  cmd->add_option("--min-window", a->min_window,
                  "keep this much recent history even when the volume nears full: 1d, 2h, 0 = none");
}

}  // namespace roam::ctl
