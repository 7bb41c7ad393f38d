#include "broker/disk_server.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>
#include <vector>

#include "base/sys/child.h"
#include "base/sys/files.h"
#include "base/sys/mountinfo.h"
#include "protocol/curve_keys.h"

namespace roam::broker {

namespace {

using Clock = std::chrono::steady_clock;
constexpr char kFusectl[] = "/sys/fs/fuse/connections";

bool is_roamfs_mount(const std::string& mount_point) {
  auto m = mount_at(mount_point);
  return m && m->fstype == "fuse.roamfs";
}

std::string last_line(const std::string& file) {
  std::ifstream in(file);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last.empty() ? "(no output)" : last;
}

// Reaps `pid` if it is our child; true once it no longer runs (a zombie
// that is not ours counts as gone: it holds no files).
bool gone(pid_t pid) {
  int st = 0;
  if (::waitpid(pid, &st, WNOHANG) == pid) return true;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  return close == std::string::npos || (close + 2 < text.size() && text[close + 2] == 'Z');
}

bool wait_gone(pid_t pid, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!gone(pid)) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// Aborts the FUSE connection behind `mount_point`; every pending and future
// request on it fails with ENOTCONN. Best effort: SIGKILL has the same effect
// once the process is gone. The connection is found by the device number in
// the mount table, not by stat(): a disk served to a desktop's user namespace
// refuses the host's processes (EACCES), and a hung roamfs would hang it.
void abort_connection(const std::string& mount_point) {
  auto m = mount_at(mount_point);
  if (!m || m->fstype != "fuse.roamfs") return;
  const size_t colon = m->device.find(':');
  if (colon == std::string::npos) return;
  std::string path = std::string(kFusectl) + "/" + m->device.substr(colon + 1) + "/abort";
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  [[maybe_unused]] auto n = ::write(fd, "1", 1);
  ::close(fd);
}

// EXPORTS/DESKTOP.userns for a mount point EXPORTS/DESKTOP/USER@EPOCH: the
// handle of the desktop's user namespace that its provisioner leaves when the
// desktop has one (tools/desktop/roam-desktop).
std::string desktop_userns(const std::string& mount_point) {
  return mount_point.substr(0, mount_point.rfind('/')) + ".userns";
}

void detach_mount(const std::string& mount_point) {
  while (is_roamfs_mount(mount_point))
    if (::umount2(mount_point.c_str(), MNT_DETACH) != 0) break;
}

// Makes `dir` a mount point (bound onto itself) with `propagation`.
Status bind_self(const std::string& dir, unsigned long propagation) {
  ROAM_TRY(make_dirs(dir));
  if (!mount_at(dir) && ::mount(dir.c_str(), dir.c_str(), nullptr, MS_BIND, nullptr) != 0)
    return errno_error("cannot bind-mount " + dir + " onto itself");
  if (::mount(nullptr, dir.c_str(), nullptr, propagation, nullptr) != 0)
    return errno_error("cannot set the propagation of " + dir);
  return Status::ok();
}

std::string remote_key_file(const DiskServerConfig& cfg, const std::string& user) {
  return cfg.keys_dir + "/" + user + ".remote.key";
}

}  // namespace

Result<std::string> remote_key_of(const DiskServerConfig& cfg, const std::string& user) {
  const std::string file = remote_key_file(cfg, user);
  if (::access(file.c_str(), F_OK) != 0) {
    // Written aside and renamed: a broker killed halfway leaves no half key file.
    const std::string partial = file + ".new";
    ::unlink(partial.c_str());
    ROAM_ASSIGN(auto fresh, proto::generate_keypair());
    ROAM_TRY(proto::write_key_file(partial, fresh));
    if (::rename(partial.c_str(), file.c_str()) != 0) return errno_error("cannot rename " + partial);
  }
  ROAM_ASSIGN(auto keys, proto::read_key_file(file));
  return proto::to_hex(keys.public_key);
}

Status prepare_exports(const std::string& exports_dir) {
  ROAM_TRY(bind_self(exports_dir, MS_PRIVATE));
  struct stat st {};
  if (::stat(kFusectl, &st) == 0 && !mount_at(kFusectl))
    ::mount("fusectl", kFusectl, "fusectl", 0, nullptr);  // best effort, see abort_connection
  return Status::ok();
}

Result<std::string> desktop_export_dir(const DiskServerConfig& cfg, const std::string& desktop) {
  std::string dir = cfg.exports_dir + "/" + desktop;
  if (!mount_at(dir)) ROAM_TRY(bind_self(dir, MS_SHARED));
  return dir;
}

namespace {

// roamfs's command line: the store, the mount point and how it serves them.
std::vector<std::string> roamfs_argv(const DiskServerConfig& cfg, const std::string& store,
                                     const std::string& mount_point, const std::optional<RemoteServe>& remote,
                                     const std::string& user) {
  std::vector<std::string> argv{"roamfs", store, mount_point, "-f"};
  if (remote) {
    argv.insert(argv.end(), {"--remote-listen", "tcp://" + cfg.remote_bind + ":" + std::to_string(remote->port),
                             "--remote-key-file", remote_key_file(cfg, user), "--remote-allow", remote->allow_key,
                             "--remote-epoch", std::to_string(remote->epoch)});
  } else if (const std::string userns = desktop_userns(mount_point); ::access(userns.c_str(), F_OK) == 0) {
    argv.insert(argv.end(), {"--userns", userns});
  }
  return argv;
}

// Forks roamfs with `argv`, its output appended to `log`; returns its pid.
Result<pid_t> spawn_roamfs(const DiskServerConfig& cfg, const std::vector<std::string>& argv, int log) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return errno_error("cannot fork roamfs");
  if (pid == 0) {
    ::dup2(log, 1);
    ::dup2(log, 2);
    int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, 0);
    unblock_signals_for_exec();
    ::setsid();  // not in the broker's process group: a Ctrl-C aimed at the broker spares the disks
    ::execv(cfg.roamfs.c_str(), args.data());
    ::_exit(127);
  }
  return pid;
}

}  // namespace

Result<pid_t> start_roamfs(const DiskServerConfig& cfg, const std::string& store, const std::string& mount_point,
                           const std::string& log_file, const std::optional<RemoteServe>& remote,
                           const std::string& user) {
  if (::mkdir(mount_point.c_str(), 0755) != 0 && errno != EEXIST)
    return errno_error("cannot create mount point " + mount_point);
  int log = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) return errno_error("cannot open " + log_file);
  Result<pid_t> spawned = spawn_roamfs(cfg, roamfs_argv(cfg, store, mount_point, remote, user), log);
  ::close(log);
  ROAM_ASSIGN(pid_t pid, std::move(spawned));
  auto deadline = Clock::now() + std::chrono::milliseconds(cfg.start_timeout_ms);
  while (!is_roamfs_mount(mount_point)) {
    if (gone(pid)) return Status::io("roamfs for " + store + " exited before mounting: " + last_line(log_file));
    if (Clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      wait_gone(pid, cfg.stop_timeout_ms);
      return Status::error(ETIMEDOUT, "roamfs for " + store + " did not mount within " +
                                          std::to_string(cfg.start_timeout_ms / 1000) + " s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return pid;
}

bool roamfs_alive(pid_t pid, const std::string& mount_point) {
  if (pid <= 0 || gone(pid)) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return cmdline.find(std::string(1, '\0') + mount_point + '\0') != std::string::npos;
}

namespace {

// The roamfs whose command line names `mount_point`, or 0.
pid_t find_roamfs(const std::string& mount_point) {
  DIR* d = ::opendir("/proc");
  if (!d) return 0;
  pid_t found = 0;
  while (dirent* e = ::readdir(d)) {
    const pid_t pid = static_cast<pid_t>(std::strtol(e->d_name, nullptr, 10));
    std::ifstream comm("/proc/" + std::string(e->d_name) + "/comm");
    std::string name;
    if (pid > 0 && std::getline(comm, name) && name == "roamfs" && roamfs_alive(pid, mount_point)) {
      found = pid;
      break;
    }
  }
  ::closedir(d);
  return found;
}

}  // namespace

Status stop_roamfs(const DiskServerConfig& cfg, pid_t pid, const std::string& mount_point, bool fence) {
  if (pid <= 0) pid = find_roamfs(mount_point);
  bool ours = roamfs_alive(pid, mount_point);
  if (fence) abort_connection(mount_point);
  if (ours && fence) ::kill(pid, SIGKILL);
  detach_mount(mount_point);
  if (ours && !fence && !wait_gone(pid, cfg.stop_timeout_ms)) {
    ::kill(pid, SIGTERM);
    if (!wait_gone(pid, cfg.stop_timeout_ms / 2)) {
      abort_connection(mount_point);
      ::kill(pid, SIGKILL);
    }
  }
  if (ours && !wait_gone(pid, cfg.stop_timeout_ms))
    return Status::error(ETIMEDOUT, "roamfs " + std::to_string(pid) + " did not exit after SIGKILL");
  ::rmdir(mount_point.c_str());
  return Status::ok();
}

Result<std::string> RoamfsHost::export_dir(const std::string& desktop) { return desktop_export_dir(cfg_, desktop); }

Result<std::string> RoamfsHost::private_dir() {
  ROAM_TRY(make_dirs(cfg_.remote_dir));
  if (::chmod(cfg_.remote_dir.c_str(), 0700) != 0) return errno_error("cannot chmod " + cfg_.remote_dir);
  return cfg_.remote_dir;
}

Result<pid_t> RoamfsHost::start(const std::string& user, const std::string& store, const std::string& mount_point,
                                const std::optional<RemoteServe>& remote) {
  return start_roamfs(cfg_, store, mount_point, cfg_.log_dir + "/" + user + ".roamfs.log", remote, user);
}

Status RoamfsHost::stop(pid_t pid, const std::string& mount_point, bool fence) {
  return stop_roamfs(cfg_, pid, mount_point, fence);
}

}  // namespace roam::broker
