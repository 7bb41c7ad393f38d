#include "agent/busy.h"

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>

namespace roam::agent {

namespace {

bool under(const std::string& path, const std::string& dir) {
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/');
}

std::string link_target(const std::string& link) {
  char buf[4096];
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

bool maps_under(const std::string& proc, const std::string& dir) {
  std::ifstream maps(proc + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    auto slash = line.find('/');
    if (slash != std::string::npos && under(line.substr(slash), dir)) return true;
  }
  return false;
}

bool uses(const std::string& proc, const std::string& dir) {
  if (under(link_target(proc + "/cwd"), dir) || under(link_target(proc + "/root"), dir)) return true;
  if (DIR* fds = ::opendir((proc + "/fd").c_str())) {
    bool found = false;
    while (dirent* e = ::readdir(fds))
      if (e->d_name[0] != '.' && under(link_target(proc + "/fd/" + e->d_name), dir)) found = true;
    ::closedir(fds);
    if (found) return true;
  }
  return maps_under(proc, dir);
}

void reap() {
  int st = 0;
  while (::waitpid(-1, &st, WNOHANG | __WNOTHREAD) > 0) {
  }
}

}  // namespace

std::vector<std::string> mounts_of_same_filesystem(const std::vector<MountEntry>& mounts, const std::string& dir) {
  std::vector<std::string> out{dir};
  std::string device;
  for (const auto& m : mounts)
    if (m.mount_point == dir) device = m.device;  // the last one: the mount on top
  if (device.empty()) return out;
  for (const auto& m : mounts)
    if (m.device == device && m.mount_point != dir &&
        std::find(out.begin(), out.end(), m.mount_point) == out.end())
      out.push_back(m.mount_point);
  return out;
}

std::vector<BusyProcess> processes_using(const std::vector<std::string>& dirs) {
  std::vector<BusyProcess> out;
  DIR* procs = ::opendir("/proc");
  if (!procs) return out;
  const pid_t self = ::getpid();
  while (dirent* e = ::readdir(procs)) {
    pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0 || pid == self) continue;
    std::string proc = std::string("/proc/") + e->d_name;
    if (std::none_of(dirs.begin(), dirs.end(), [&proc](const std::string& d) { return uses(proc, d); })) continue;
    std::ifstream comm(proc + "/comm");
    std::string name;
    std::getline(comm, name);
    out.push_back({pid, name});
  }
  ::closedir(procs);
  return out;
}

Status release_busy(const std::vector<std::string>& dirs, bool force, int grace_ms) {
  const std::string& dir = dirs.at(0);
  auto busy = processes_using(dirs);
  if (busy.empty()) return Status::ok();
  if (!force) {
    std::string who;
    for (const auto& p : busy) who += (who.empty() ? "" : ", ") + std::to_string(p.pid) + " (" + p.comm + ")";
    return Status::error(EBUSY, std::to_string(busy.size()) + " process(es) hold files under " + dir + ": " + who);
  }
  using Clock = std::chrono::steady_clock;
  for (const auto& p : busy) ::kill(p.pid, SIGTERM);
  auto deadline = Clock::now() + std::chrono::milliseconds(grace_ms);
  while (!busy.empty() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    reap();
    busy = processes_using(dirs);
  }
  for (const auto& p : busy) ::kill(p.pid, SIGKILL);
  deadline = Clock::now() + std::chrono::seconds(5);
  while (!busy.empty() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    reap();
    busy = processes_using(dirs);
  }
  if (!busy.empty()) return Status::error(EBUSY, "processes under " + dir + " survived SIGKILL");
  return Status::ok();
}

}  // namespace roam::agent
