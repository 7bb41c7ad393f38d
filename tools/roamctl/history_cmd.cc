// roamctl history STORE|MOUNTPOINT PATH [--json]: every version of one path.
#include <sys/stat.h>

#include <cstdio>
#include <string>

#include "fusefs/history/versions.h"
#include "base/timefmt.h"
#include "tools/roamctl/commands.h"
#include "tools/roamctl/control_client.h"
#include "tools/roamctl/json.h"
#include "tools/roamctl/target.h"

namespace roam::ctl {

namespace {

struct HistoryArgs {
  std::string target, path;
  bool json = false;
};

std::string size_after(const Version& v) {
  if (!v.after || v.after->nlink == 0) return "gone";
  if (S_ISDIR(v.after->mode)) return "dir";
  return std::to_string(v.after->size);
}

std::string path_of(const OpRecord& r) { return r.path2.empty() ? r.path : r.path + " -> " + r.path2; }

void print_row(const Version& v) {
  const OpRecord& r = v.record;
  std::printf("%8llu  %s  %-11s  %-40s  %-28s  %s\n", static_cast<unsigned long long>(r.seq),
              format_time_local(r.ts_ns).c_str(), std::string(op_kind_name(r.kind)).c_str(), path_of(r).c_str(),
              caller_text(r.caller).c_str(), size_after(v).c_str());
}

void print_json(const Version& v) {
  const OpRecord& r = v.record;
  std::printf("{\"seq\":%llu,\"ts_ns\":%lld,\"time\":%s,\"op\":%s,\"ino\":%llu,\"path\":%s,\"comm\":%s,\"pid\":%u,"
              "\"uid\":%u,\"size_after\":%s",
              static_cast<unsigned long long>(r.seq), static_cast<long long>(r.ts_ns),
              json_string(format_time_utc(r.ts_ns)).c_str(), json_string(op_kind_name(r.kind)).c_str(),
              static_cast<unsigned long long>(v.ino), json_string(path_of(r)).c_str(),
              json_string(r.caller.comm).c_str(), r.caller.pid, r.caller.uid, json_string(size_after(v)).c_str());
  if (!r.caller.desktop.empty()) std::printf(",\"desktop\":%s", json_string(r.caller.desktop).c_str());
  std::printf("}\n");
}

int run_history(const HistoryArgs& a) {
  auto target = resolve_target(a.target);
  if (!target) return fail("history", target.status());
  auto store = open_for_reading(*target);
  if (!store) return fail("history", store.status());
  auto txn = (*store)->begin_read();
  if (!txn) return fail("history", txn.status());
  const std::string path = disk_path(*target, a.path);
  auto versions = versions_of(*txn, path);
  if (!versions) return fail("history", versions.status());
  if (a.json) {
    for (const auto& v : *versions) print_json(v);
    return 0;
  }
  std::printf("%8s  %-23s  %-11s  %-40s  %-28s  %s\n", "SEQ", "TIME", "OP", "PATH", "BY", "SIZE AFTER");
  for (const auto& v : *versions) print_row(v);
  std::printf("restore the version made by op N with: roamctl restore %s %s --before-op N+1 (or --at TIME)\n",
              a.target.c_str(), path.c_str());
  return 0;
}

}  // namespace

void add_history_command(CLI::App& app, int& exit_code) {
  auto [cmd, a] = add_command<HistoryArgs>(app, "history", "list every version of a path, across renames",
                                           run_history, exit_code);
  add_target_argument(cmd, a->target);
  cmd->add_option("path", a->path, "the path inside the disk")->required();
  cmd->add_flag("--json", a->json, "one JSON object per line");
}

}  // namespace roam::ctl
