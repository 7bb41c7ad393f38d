#include "tools/roamctl/control_client.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "fusefs/control/execute.h"
#include "tools/roamctl/json.h"

namespace roam::ctl {

namespace {

Result<control::Reply> run_mounted(const Target& t, const control::Request& req) {
  ROAM_TRY(control::flush_mount(t.mountpoint));
  // The roamfs of a store runs as root or as the store's owner; a server
  // that is neither is not answered (control::call).
  struct stat st {};
  if (::stat(t.store.c_str(), &st) != 0) return Status::error(errno, "cannot stat " + t.store + ": " + std::strerror(errno));
  return control::call(control::socket_dir(t.store), st.st_uid, req);
}

Result<control::Reply> run_offline(const Target& t, const control::Request& req) {
  ROAM_ASSIGN(auto store, Store::open(t.store, {}));
  const Caller me = control::process_caller(::getuid(), ::getgid(), static_cast<uint32_t>(::getpid()));
  control::Executed done = control::execute(*store, {me, {}}, req);
  if (done.reply.err == 0) ROAM_TRY(store->sync());
  return std::move(done.reply);
}

}  // namespace

Result<control::Reply> run_control(const Target& target, const control::Request& req) {
  ROAM_ASSIGN(control::Reply reply, target.mountpoint.empty() ? run_offline(target, req) : run_mounted(target, req));
  if (reply.err != 0) return Status::error(reply.err, reply.message);
  return reply;
}

Result<control::Reply> run_control(const std::string& target_arg, const control::Request& req) {
  ROAM_ASSIGN(Target target, resolve_target(target_arg));
  return run_control(target, req);
}

Result<std::unique_ptr<Store>> open_for_reading(const Target& target) {
  if (!target.mountpoint.empty()) ROAM_TRY(run_control(target, control::CheckpointCall{}).take_status());
  return Store::open(target.store, {.read_only = true});
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

void print_changes(const std::vector<RestoreChange>& changes, bool json) {
  for (const auto& c : changes) {
    if (json)
      std::printf("{\"change\":\"%c\",\"path\":%s,\"what\":%s}\n", static_cast<char>(c.kind),
                  json_string(c.path).c_str(), json_string(c.what).c_str());
    else
      std::printf("%c %s%s%s\n", static_cast<char>(c.kind), c.path.c_str(), c.what.empty() ? "" : "  ", c.what.c_str());
  }
}

}  // namespace roam::ctl
