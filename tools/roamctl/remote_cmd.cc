// roamctl remote allow STORE|MOUNTPOINT KEY EPOCH, roamctl remote fence
// STORE|MOUNTPOINT: which desktop a roamfs serving its disk remotely
// (--remote-listen, docs/remote.md) answers. The broker's switch will send
// the same requests; by hand they are for tests and for trying a compute host.
#include <cstdint>
#include <cstdio>
#include <string>

#include "tools/roamctl/commands.h"
#include "tools/roamctl/control_client.h"

namespace roam::ctl {

namespace {

struct AllowArgs {
  std::string target, key;
  uint64_t epoch = 0;
};

int run_allow(const AllowArgs& a) {
  auto r = run_control(a.target, control::RemoteAllowCall{a.key, a.epoch});
  if (!r) return fail("remote allow", r.status());
  std::printf("the disk is served to desktop key %s from epoch %llu on\n", a.key.c_str(),
              static_cast<unsigned long long>(a.epoch));
  return 0;
}

int run_fence(const TargetJsonArgs& a) {
  auto r = run_control(a.target, control::RemoteFenceCall{});
  if (!r) return fail("remote fence", r.status());
  std::printf("fenced: no desktop is served remotely\n");
  return 0;
}

}  // namespace

void add_remote_command(CLI::App& app, int& exit_code) {
  CLI::App* remote = app.add_subcommand("remote", "which desktop a disk served remotely answers");
  remote->require_subcommand(1);
  auto [allow, a] = add_command<AllowArgs>(*remote, "allow", "serve the disk to this desktop key only", run_allow,
                                           exit_code);
  add_target_argument(allow, a->target);
  allow->add_option("key", a->key, "the desktop agent's public key (hex)")->required();
  allow->add_option("epoch", a->epoch, "the attachment epoch (never older than the current)")->required();
  auto [fence, f] = add_command<TargetJsonArgs>(*remote, "fence", "serve no desktop; drop the current one",
                                                run_fence, exit_code);
  add_target_argument(fence, f->target);
}

}  // namespace roam::ctl
