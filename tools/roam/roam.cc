// roam: a desktop user's own history, from inside the desktop.
//
//   roam history FILE
//   roam log [PATH] [--since TIME] [--by PROCESS] [--limit N]
//   roam restore PATH (--at TIME | --before-op SEQ) [--to NEW] [--dry-run]
//   roam undo-restore
//   roam undo (--by PROCESS | --pid PID) [--since TIME] [--dry-run]
//
// It asks the desktop's agent on its local socket (proto::kAgentSocketPath);
// the agent adds who is asking (the kernel's word) and passes the request to
// the broker, which runs it on the disk attached to this desktop, as this
// user: only what they could read then, only where they can write now
// (docs/security.md). PATHs are paths in this desktop (relative to the
// working directory, or absolute) on the user disk's mount.
#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "protocol/local_socket.h"
#include "protocol/table.h"

namespace {

using roam::Result;
using roam::Status;

struct Args {
  std::string socket = std::string(roam::proto::kAgentSocketPath);
  std::string path, at, to, since, by;
  uint64_t before_op = 0, limit = 0, pid = 0;
  bool dry_run = false, json = false;
};

// `path` made absolute against the working directory, with "." and ".."
// taken away by name (the path may no longer exist: that is why one restores).
std::string absolute(const std::string& path) {
  std::string full = path;
  if (full.empty() || full[0] != '/') {
    char cwd[4096];
    full = std::string(::getcwd(cwd, sizeof cwd) ? cwd : "/") + "/" + path;
  }
  std::vector<std::string> parts;
  std::stringstream in(full);
  for (std::string part; std::getline(in, part, '/');) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else {
      parts.push_back(part);
    }
  }
  std::string out;
  for (const auto& p : parts) out += "/" + p;
  return out.empty() ? "/" : out;
}

// The mount point of the user disk that holds `path`: the longest mount
// point above it of type fuse.roamfs (/proc/self/mountinfo).
Result<std::string> disk_mount_of(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line, best;
  bool found = false;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, parent, dev, root, mount, field;
    f >> id >> parent >> dev >> root >> mount;
    while (f >> field && field != "-") {
    }
    std::string type;
    f >> type;
    const bool above = path == mount || mount == "/" || path.rfind(mount + "/", 0) == 0;
    if (type == "fuse.roamfs" && above && (!found || mount.size() > best.size())) {
      best = mount;
      found = true;
    }
  }
  if (!found) return Status::not_found(path + " is not on your user disk");
  return best;
}

// `user_path` as a path on the disk ("/thesis.odt"), with the disk's mount.
struct OnDisk {
  std::string mount, path;
};
Result<OnDisk> on_disk(const std::string& user_path) {
  const std::string full = absolute(user_path);
  ROAM_ASSIGN(std::string mount, disk_mount_of(full));
  std::string rest = full.substr(mount == "/" ? 0 : mount.size());
  return OnDisk{mount, rest.empty() ? "/" : rest};
}

Result<roam::proto::Reply> ask_agent(const std::string& socket_path, const roam::proto::HistoryRequest& req) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) return Status::invalid("socket path too long");
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::error(errno, std::string("socket: ") + std::strerror(errno));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    ::close(fd);
    return Status::error(err, "cannot reach the roam agent at " + socket_path + ": " + std::strerror(err));
  }
  Status sent = roam::proto::write_message(fd, req);
  auto reply = sent ? roam::proto::read_message(fd) : Result<roam::proto::Message>(sent);
  ::close(fd);
  if (!reply) return reply.status();
  const auto* r = std::get_if<roam::proto::Reply>(&*reply);
  if (!r) return Status::error(EPROTO, "the agent answered with something else than a reply");
  ROAM_TRY(roam::proto::status_of(*r));
  return *r;
}

int fail(const std::string& cmd, const Status& s) {
  std::fprintf(stderr, "roam %s: %s\n", cmd.c_str(), s.message().c_str());
  return 1;
}

// Sends `req` and prints the answer: the table, then the sentence (unless "ok").
int run(const Args& a, roam::proto::HistoryRequest req) {
  req.request_id = static_cast<uint64_t>(::getpid());
  auto reply = ask_agent(a.socket, req);
  if (!reply) return fail(req.command, reply.status());
  if (req.command == "restore" || req.command == "undo-restore" || req.command == "undo") {
    for (size_t i = 1; i < reply->rows.size(); ++i) std::printf("%s\n", reply->rows[i].c_str());
  } else {
    roam::proto::print_table(*reply, a.json);
  }
  if (reply->message != "ok") std::printf("%s\n", reply->message.c_str());
  return 0;
}

// syncfs of the mount at `mount`; best effort (the request says what it finds).
void sync_mount(const std::string& mount) {
  const int fd = ::open(mount.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::syncfs(fd);
  ::close(fd);
}

int run_on_path(const Args& a, roam::proto::HistoryRequest req, bool flush) {
  if (!a.path.empty()) {
    auto where = on_disk(a.path);
    if (!where) return fail(req.command, where.status());
    req.path = where->path;
    if (flush) {
      // What this desktop still has to write goes first: the kernel must not
      // write it over what the restore brings back afterwards.
      sync_mount(where->mount);
    }
  }
  if (!a.to.empty()) {
    auto to = on_disk(a.to);
    if (!to) return fail(req.command, to.status());
    req.to = to->path;
  }
  return run(a, std::move(req));
}

// What this desktop still has to write to the user disk goes first: the
// kernel must not write it over what an undo brings back, and the op log
// must hold the changes to undo. The disk is the one holding $HOME (else
// the working directory); none found: nothing to flush here.
void flush_home() {
  const char* home = std::getenv("HOME");
  auto where = on_disk(home && *home ? home : ".");
  if (where) sync_mount(where->mount);
}

void add_undo_command(CLI::App& app, Args& a, int& exit_code) {
  auto* undo = app.add_subcommand("undo", "undo what one program changed, keeping everything else");
  auto* by = undo->add_option("--by", a.by, "the program's process name (as roam log shows it)");
  auto* pid = undo->add_option("--pid", a.pid, "the program's process id (as roam log shows it)");
  by->excludes(pid);
  undo->add_option("--since", a.since, "only its changes at or after TIME (-2h, 2026-12-04T23:00, @EPOCH)");
  undo->add_flag("--dry-run", a.dry_run, "list every path and what would happen to it, change nothing");
  undo->callback([&, by, pid] {
    if (by->count() + pid->count() != 1 || (pid->count() == 1 && a.pid == 0)) {
      exit_code = fail("undo", Status::invalid("say whose changes to undo: --by PROCESS or --pid PID"));
      return;
    }
    flush_home();
    exit_code = run(a, {.command = "undo", .since = a.since, .by = a.by, .dry_run = a.dry_run, .by_pid = a.pid});
  });
}

void add_commands(CLI::App& app, Args& a, int& exit_code) {
  app.add_option("--socket", a.socket, "the agent's socket")->capture_default_str();
  app.add_flag("--json", a.json, "print tables as JSON");
  auto* history = app.add_subcommand("history", "every version of a file you could read");
  history->add_option("file", a.path, "the file")->required();
  history->callback([&] { exit_code = run_on_path(a, {.command = "history"}, false); });

  auto* log = app.add_subcommand("log", "what changed on your disk (what you could see of it)");
  log->add_option("path", a.path, "only this path or below");
  log->add_option("--since", a.since, "only changes at or after TIME (-2h, 2026-12-04T23:00, @EPOCH)");
  log->add_option("--by", a.by, "only changes made by processes of this name");
  log->add_option("--limit", a.limit, "the newest N changes (default 1000)");
  log->callback([&] { exit_code = run_on_path(a, {.command = "log", .since = a.since, .by = a.by, .limit = a.limit}, false); });

  auto* restore = app.add_subcommand("restore", "bring a file or directory back as it was");
  restore->add_option("path", a.path, "the file or directory")->required();
  auto* at = restore->add_option("--at", a.at, "the moment: -5m, -2h, 2026-12-04T23:00, @EPOCH");
  auto* before = restore->add_option("--before-op", a.before_op, "just before this change (its SEQ in roam log)");
  at->excludes(before);
  restore->add_option("--to", a.to, "restore a copy at this new path instead");
  restore->add_flag("--dry-run", a.dry_run, "say what would change, change nothing");
  restore->callback([&, at, before] {
    if (at->count() + before->count() != 1) {
      exit_code = fail("restore", Status::invalid("say which moment: --at TIME or --before-op SEQ"));
      return;
    }
    exit_code = run_on_path(a, {.command = "restore", .at = a.at, .before_op = a.before_op, .dry_run = a.dry_run}, true);
  });

  auto* undo = app.add_subcommand("undo-restore", "undo your last restore (again: redo it)");
  undo->callback([&] {
    flush_home();  // as for a restore: nothing this desktop still has to write may land over it
    exit_code = run(a, {.command = "undo-restore"});
  });
  add_undo_command(app, a, exit_code);
  app.require_subcommand(1);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"roam: your files as they were, from inside your desktop"};
  Args args;
  int exit_code = 0;
  add_commands(app, args, exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
