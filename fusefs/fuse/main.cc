// roamfs STORE MOUNTPOINT [-f] [-o OPTS]: serve a user disk over FUSE.
//
// Without -f, roamfs forks before touching the store; the child opens the
// store, mounts, and only then tells the waiting parent "ready" through a pipe,
// so `roamfs STORE MNT && ls MNT` works and every startup error is printed by
// the command the user ran, with a non-zero exit.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <climits>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fusefs/control/server.h"
#include "fusefs/fuse/control_handler.h"
#include "fusefs/fuse/history_dir.h"
#include "fusefs/fuse/housekeeper.h"
#include "fusefs/fuse/ops.h"
#include "fusefs/fuse/remote_server.h"
#include "fusefs/fuse/userns_mount.h"
#include "fusefs/gc/pins.h"
#include "fusefs/history/moment.h"
#include "base/timefmt.h"
#include "base/backing_fs.h"
#include "fusefs/store/store.h"
#include "protocol/curve_keys.h"
#include "base/sys/mountinfo.h"

namespace {

using roam::Status;

// A mount point must be an empty directory that nothing is mounted on.
Status check_mountpoint(const std::string& mnt) {
  struct stat st {};
  if (::stat(mnt.c_str(), &st) < 0)
    return Status::error(errno, "mount point " + mnt + ": " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) return Status::error(ENOTDIR, "mount point " + mnt + " is not a directory");
  char real[PATH_MAX];
  if (!::realpath(mnt.c_str(), real)) return Status::error(errno, "mount point " + mnt + ": " + std::strerror(errno));
  if (roam::mount_at(real))
    return Status::error(EBUSY, "mount point " + mnt + " is busy: something is already mounted there");
  DIR* d = ::opendir(mnt.c_str());
  if (!d) return Status::error(errno, "mount point " + mnt + ": " + std::strerror(errno));
  bool empty = true;
  while (dirent* e = ::readdir(d))
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) empty = false;
  ::closedir(d);
  if (!empty) return Status::error(ENOTEMPTY, "mount point " + mnt + " is not empty; mount on an empty directory");
  return Status::ok();
}

struct Args {
  std::string store, mountpoint, options;
  std::string at;      // --at TIME: a read-only view of the past
  std::string userns;  // --userns PATH: the user namespace the disk is served to
  bool foreground = false, debug = false, single_thread = false;
  bool no_killpriv = false;
  bool no_posix_acl = false;
  bool no_history_dir = false;
  // --remote-*: serve the disk to a remote desktop too (fuse/remote_server.h)
  std::string remote_listen, remote_key_file, remote_allow;
  uint64_t remote_epoch = 0;
};

// What a daemonized child reports once it serves; any other report is the
// message of the error it failed with.
constexpr std::string_view kReadyReport = "ok";

// Reports startup success or failure to the parent when daemonized.
class StartupPipe {
 public:
  explicit StartupPipe(int fd) : fd_(fd) {}
  void ready() { send(kReadyReport); }
  void fail(const std::string& message) { send(message); }

 private:
  void send(std::string_view msg) {
    if (fd_ < 0) return;
    [[maybe_unused]] auto n = ::write(fd_, msg.data(), msg.size());
    ::close(fd_);
    fd_ = -1;
  }
  int fd_;
};

// The control socket (restore on a mounted disk), served until unmount.
roam::Result<std::unique_ptr<roam::control::Server>> start_control(roam::Store& store, roam::ServedDisk disk) {
  return roam::control::Server::start(
      roam::control::socket_dir(store.dir()),
      [&store, disk = std::move(disk)](const roam::control::Request& req, const ucred& caller) {
        return roam::handle_control(store, disk, req, caller);
      });
}

// With --remote-listen: the disk served to the desktop whose key is allowed.
roam::Result<std::unique_ptr<roam::RemoteServer>> start_remote(const Args& args, roam::FuseContext& context) {
  if (args.remote_listen.empty()) return std::unique_ptr<roam::RemoteServer>();
  if (context.options.read_only) return Status::invalid("--remote-listen serves the live disk, not a past view (--at)");
  if (args.remote_key_file.empty()) return Status::invalid("--remote-listen needs --remote-key-file");
  roam::RemoteServer::Config cfg{.listen = args.remote_listen, .epoch = args.remote_epoch,
                                 .options = context.options, .history = context.history};
  ROAM_ASSIGN(cfg.keys, roam::proto::read_key_file(args.remote_key_file));
  if (!args.remote_allow.empty()) {
    ROAM_ASSIGN(std::string raw, roam::proto::key_from_hex(args.remote_allow, "--remote-allow"));
    cfg.allowed_key = roam::proto::to_hex(raw);  // lower case, as the ZAP handler names keys
  }
  return roam::RemoteServer::start(context.fs, std::move(cfg));
}

// To the operator's terminal (or the startup log) and to syslog.
void warn(const std::string& what) {
  std::fprintf(stderr, "roamfs: warning: %s\n", what.c_str());
  syslog(LOG_WARNING, "roamfs: warning: %s", what.c_str());
}

// The disk to serve: the live store, or a read-only view of it at --at TIME
// (pinned so that the live roamfs's GC keeps the history the view reads).
struct Disk {
  std::unique_ptr<roam::Store> store;
  std::optional<uint64_t> at_seq;
  std::optional<roam::Pin> pin;
};

// A read-only view reads LMDB's last checkpoint: when the disk is mounted
// (its roamfs answers on the control socket), have it commit its newest
// changes first, so that --at a moment of the last seconds sees them. Best
// effort: an unmounted disk has nothing to commit.
void ask_live_roamfs_to_checkpoint(const std::string& store_dir) {
  struct stat st {};
  if (::stat(store_dir.c_str(), &st) != 0) return;
  (void)roam::control::call(roam::control::socket_dir(store_dir), st.st_uid, roam::control::CheckpointCall{});
}

roam::Result<Disk> open_disk(const Args& args) {
  Disk disk;
  if (args.at.empty()) {
    ROAM_ASSIGN(disk.store, roam::Store::open(args.store, {}));
    if (std::string w = roam::power_loss_warning(args.store, roam::backing_fs_of(args.store)); !w.empty()) warn(w);
    return disk;
  }
  const int64_t now = roam::wall_clock_ns();
  auto at = roam::parse_time(args.at, now);
  if (!at) return at.status().with_context("--at");
  ask_live_roamfs_to_checkpoint(args.store);
  ROAM_ASSIGN(disk.store, roam::Store::open(args.store, {.read_only = true}));
  ROAM_ASSIGN(roam::ReadTxn txn, disk.store->begin_read());
  ROAM_ASSIGN(roam::Moment moment, roam::moment_at(txn, *at, now));
  ROAM_ASSIGN(roam::Pin pin, roam::Pin::take(disk.store->dir(), moment.seq));
  disk.pin.emplace(std::move(pin));
  disk.at_seq = moment.seq;
  return disk;
}

// The mount's source, "roamfs:" and the store's absolute path: what roamctl
// finds the store by in the mount table.
roam::Result<std::string> mount_source(const Args& args) {
  char real_store[PATH_MAX];
  if (!::realpath(args.store.c_str(), real_store))
    return Status::error(errno, "store " + args.store + ": " + std::strerror(errno));
  return "roamfs:" + std::string(real_store);
}

// The FUSE mount options: the source, then the user's.
roam::Result<std::string> mount_options(const Args& args, const std::string& source, bool read_only) {
  std::string opts = "fsname=" + source + ",subtype=roamfs,default_permissions";
  if (::geteuid() == 0) opts += ",allow_other";
  if (read_only) opts += ",ro";
  if (!args.options.empty()) opts += "," + args.options;
  return opts;
}

// Where a session's connection comes from: libfuse mounts the mount point,
// or, with --userns, mount_for_userns mounted it at `mountpoint` for that
// namespace and libfuse serves /dev/fd/N.
struct MountTarget {
  std::string mountpoint;  // absolute
  std::string source;      // mount_source
  std::string userns;      // empty: libfuse mounts
};

roam::Result<std::string> connection_for(const MountTarget& t, bool read_only) {
  if (t.userns.empty()) return t.mountpoint;
  ROAM_ASSIGN(int fd, roam::mount_for_userns({t.userns, t.mountpoint, t.source, "roamfs", read_only}));
  return "/dev/fd/" + std::to_string(fd);
}

// libfuse unmounts only what it mounted: a --userns mount still at the mount
// point is detached here, so that roamfs leaves no mount behind either way.
void detach_userns_mount(const MountTarget& t) {
  if (t.userns.empty()) return;
  auto m = roam::mount_at(t.mountpoint);
  if (m && m->fstype == "fuse.roamfs" && m->source == t.source) ::umount2(t.mountpoint.c_str(), MNT_DETACH);
}

// A FUSE session mounted at a mount point, with roamfs's signal handlers
// installed; unmounted and destroyed when it goes. Move-only.
class MountedSession {
 public:
  // Fails with the step that failed; undoes the steps before it.
  static roam::Result<MountedSession> mount(const Args& args, const std::string& options, MountTarget target,
                                            roam::FuseContext& context) {
    std::vector<std::string> argv_s = {"roamfs", "-o", options};
    if (args.debug) argv_s.emplace_back("-d");
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    fuse_args fargs = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
    MountedSession s;
    s.target_ = std::move(target);
    // The live disk has .history at its root; a past view (--at) does not.
    const fuse_lowlevel_ops& ops = context.history ? roam::roamfs_ops_with_history() : roam::roamfs_ops();
    s.se_ = fuse_session_new(&fargs, &ops, sizeof(fuse_lowlevel_ops), &context);
    fuse_opt_free_args(&fargs);  // fuse_session_new re-parses them into an allocated copy
    if (!s.se_) return Status::invalid("bad mount options: " + args.options);
    if (fuse_set_signal_handlers(s.se_) != 0) return Status::io("cannot install signal handlers");
    s.signal_handlers_ = true;
    ROAM_ASSIGN(std::string connection, connection_for(s.target_, context.options.read_only));
    s.mounted_ = true;  // a --userns mount is there now, whatever libfuse does
    if (fuse_session_mount(s.se_, connection.c_str()) != 0)
      return Status::io("cannot mount on " + args.mountpoint + " (is /dev/fuse available?)");
    return s;
  }

  MountedSession(MountedSession&& o) noexcept
      : target_(std::move(o.target_)),
        se_(std::exchange(o.se_, nullptr)),
        signal_handlers_(o.signal_handlers_),
        mounted_(o.mounted_) {}
  MountedSession& operator=(MountedSession&&) = delete;
  ~MountedSession() {
    if (!se_) return;
    if (mounted_) fuse_session_unmount(se_);
    if (mounted_) detach_userns_mount(target_);
    if (signal_handlers_) fuse_remove_signal_handlers(se_);
    fuse_session_destroy(se_);
  }

  fuse_session* get() const { return se_; }

 private:
  MountedSession() = default;
  MountTarget target_;
  fuse_session* se_ = nullptr;
  bool signal_handlers_ = false;
  bool mounted_ = false;
};

// A daemon's standard streams go nowhere once the parent has its report.
void detach_stdio() {
  int null = ::open("/dev/null", O_RDWR);
  ::dup2(null, STDIN_FILENO), ::dup2(null, STDOUT_FILENO), ::dup2(null, STDERR_FILENO);
  if (null > STDERR_FILENO) ::close(null);
}

// Mounts, reports ready, serves until unmounted, then unmounts: returns the
// loop's result. Fails only before it reports ready, having undone what it did.
roam::Result<int> mount_and_serve(const Args& args, roam::Store& store, roam::FuseContext& context,
                                  StartupPipe& startup) {
  const bool past = context.options.read_only;
  char real_mountpoint[PATH_MAX];  // the control handler opens restored paths through it
  if (!::realpath(args.mountpoint.c_str(), real_mountpoint))
    return Status::error(errno, "mount point " + args.mountpoint + ": " + std::strerror(errno));
  ROAM_ASSIGN(std::string source, mount_source(args));
  ROAM_ASSIGN(std::string options, mount_options(args, source, past));
  ROAM_ASSIGN(MountedSession session,
              MountedSession::mount(args, options, MountTarget{real_mountpoint, source, args.userns}, context));
  context.session = session.get();
  if (int rc = context.device_io.install(session.get(), context.options.handle_killpriv_v2); rc != 0)
    return Status::error(-rc, std::string("cannot hook the FUSE device: ") + std::strerror(-rc));
  // A past view changes nothing: no control socket (restores go to the live
  // disk), no sync, no GC. Both stop before the session goes (declared after
  // it); the control socket first: no more restores.
  // The remote session stops before the session goes, and after the control
  // socket and the housekeeper, which ask it (declared in that order).
  ROAM_ASSIGN(std::unique_ptr<roam::RemoteServer> remote, start_remote(args, context));
  std::optional<roam::Housekeeper> housekeeper;
  std::unique_ptr<roam::control::Server> control;
  if (!past) {
    auto is_open = [&context, r = remote.get()](uint64_t ino) {
      return context.open_files.is_open(ino) || (r && r->is_open(ino));
    };
    ROAM_ASSIGN(control, start_control(store, {session.get(), real_mountpoint, is_open, remote.get()}));
    housekeeper.emplace(store, roam::Housekeeper::Intervals{}, is_open);
    // A write about to fail with ENOSPC lets history give way first.
    context.fs.set_space_hook([&housekeeper] { housekeeper->relieve_space_pressure(); });
  }
  startup.ready();
  if (!args.foreground) detach_stdio();
  return roam::serve_session(session.get(), args.single_thread);
}

int serve(const Args& args, StartupPipe& startup) {
  auto fail = [&](const Status& s) {
    std::fprintf(stderr, "roamfs: %s\n", s.message().c_str());
    startup.fail(s.message());
    return 1;
  };
  if (Status s = check_mountpoint(args.mountpoint); !s) return fail(s);
  auto disk = open_disk(args);
  if (!disk) return fail(disk.status());
  const bool past = disk->at_seq.has_value();
  roam::Fs fs(*disk->store, disk->at_seq);
  roam::FuseContext context{fs, {}, {}};
  context.options.read_only = past;
  context.options.handle_killpriv_v2 = !past && !args.no_killpriv;
  context.options.posix_acl = !args.no_posix_acl;
  std::optional<roam::HistoryDir> history;
  if (!past && !args.no_history_dir) {
    context.history = &history.emplace(fs, context.options.attr_timeout);
    if (fs.lookup(roam::kRootIno, roam::time_travel::kDirName))
      warn("the disk holds its own .history in its root: it is served as it is, and time travel is not "
           "reachable by that name on this disk (roamctl and roam still reach every past version)");
  }
  auto rc = mount_and_serve(args, *disk->store, context, startup);
  if (!rc) return fail(rc.status());
  if (Status s = past ? Status::ok() : fs.sync(); !s) {
    syslog(LOG_ERR, "roamfs: final sync failed: %s", s.message().c_str());
    return 1;
  }
  return *rc == 0 ? 0 : 1;
}

// Forks; the parent waits for the child's startup report and exits with it.
int daemonize_and_serve(const Args& args) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) {
    std::perror("roamfs: pipe");
    return 1;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("roamfs: fork");
    return 1;
  }
  if (pid == 0) {
    ::close(fds[0]);
    ::setsid();
    StartupPipe startup(fds[1]);
    ::_exit(serve(args, startup));
  }
  ::close(fds[1]);
  std::string report;
  constexpr size_t kReadSize = 512;  // any size: the report is read until the child closes the pipe
  char buf[kReadSize];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) report.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  if (report == kReadyReport) return 0;
  int status = 0;
  ::waitpid(pid, &status, 0);
  // The child already printed its error on our shared stderr.
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"roamfs: serve a roamdisk user disk (STORE) at MOUNTPOINT over FUSE"};
  Args args;
  app.add_option("store", args.store, "store directory made by `roamctl mkfs`")->required();
  app.add_option("mountpoint", args.mountpoint, "empty directory to mount on")->required();
  app.add_flag("-f,--foreground", args.foreground, "stay in the foreground");
  app.add_flag("-d,--debug", args.debug, "print every FUSE request (implies -f)");
  app.add_flag("-s,--single-thread", args.single_thread, "serve requests on one thread");
  app.add_option("-o", args.options, "mount options, comma-separated (passed to FUSE)");
  app.add_flag("--no-killpriv", args.no_killpriv,
               "leave setuid/setgid clearing to the kernel (no FUSE_HANDLE_KILLPRIV_V2): it then reads "
               "security.capability before each write");
  app.add_flag("--no-posix-acl", args.no_posix_acl,
               "store system.posix_acl_* xattrs without the kernel enforcing them (no FUSE_CAP_POSIX_ACL; "
               "the kernel applies the umask itself)");
  app.add_option("--userns", args.userns,
                 "serve the disk to the user namespace PATH (/proc/PID/ns/user or a bind mount of one): "
                 "uids and gids are that namespace's, in requests and in the store, and only its processes "
                 "can use the mount");
  app.add_flag("--no-history-dir", args.no_history_dir,
               "serve no .history directory at the disk's root (past versions stay reachable through "
               "roamctl and roam)");
  app.add_option("--remote-listen", args.remote_listen,
                 "also serve the disk to a remote desktop's agent (its `remote` mount driver) at this ZeroMQ "
                 "endpoint, tcp://ADDR:PORT, with CURVE (docs/remote.md)");
  app.add_option("--remote-key-file", args.remote_key_file, "roamfs's CURVE key pair for --remote-listen");
  app.add_option("--remote-allow", args.remote_allow,
                 "the public key (hex) of the one desktop agent allowed to attach remotely");
  app.add_option("--remote-epoch", args.remote_epoch, "the attachment epoch of --remote-allow");
  app.add_option("--at", args.at,
                 "mount a read-only view of the disk as it was at TIME (ISO 8601, @EPOCH, -2h, ...)");
  CLI11_PARSE(app, argc, argv);
  openlog("roamfs", LOG_PID, LOG_DAEMON);
  if (args.debug) args.foreground = true;
  if (args.foreground) {
    StartupPipe none(-1);
    return serve(args, none);
  }
  return daemonize_and_serve(args);
}
