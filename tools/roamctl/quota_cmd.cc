// roamctl quota STORE|MOUNTPOINT [--set SIZE] [--json]: show, or set, the
// disk's quota on live data (the files as `du --apparent-size` counts them;
// history is bounded by retention instead). Writes that would pass it get
// EDQUOT; deletes, truncates and restores never do.
#include <cstdint>
#include <cstdio>
#include <string>

#include "fusefs/gc/retention.h"
#include "tools/roamctl/commands.h"
#include "tools/roamctl/control_client.h"

namespace roam::ctl {

namespace {

struct QuotaArgs {
  std::string target, set;
  bool json = false;
};

int run_quota(const QuotaArgs& a) {
  control::QuotaCall call;
  if (!a.set.empty()) {
    auto bytes = parse_bytes(a.set);
    if (!bytes) return fail("quota", bytes.status().with_context("--set"));
    call.quota_bytes = *bytes;
  }
  auto r = run_control(a.target, call);
  if (!r) return fail("quota", r.status());
  if (a.json) return print_figures_json(*r), 0;
  const auto quota = static_cast<uint64_t>(figure(*r, "quota_bytes"));
  const auto live = static_cast<uint64_t>(figure(*r, "live_bytes"));
  if (quota == 0) std::printf("no quota; live data %s\n", format_bytes(live).c_str());
  else std::printf("quota %s, live data %s\n", format_bytes(quota).c_str(), format_bytes(live).c_str());
  return 0;
}

}  // namespace

void add_quota_command(CLI::App& app, int& exit_code) {
  auto [cmd, a] = add_command<QuotaArgs>(app, "quota", "show or set the disk's quota on live data", run_quota,
                                         exit_code);
  add_target_argument(cmd, a->target);
  cmd->add_flag("--json", a->json, "print a JSON object");
  cmd->add_option("--set", a->set, "limit live data to this size: 10G, 512M, 0 = no quota");
}

}  // namespace roam::ctl
