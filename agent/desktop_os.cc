// The real DesktopOs (desktop.h).
#include <fcntl.h>
#include <pwd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "agent/busy.h"
#include "agent/desktop.h"
#include "agent/health.h"
#include "base/sys/files.h"
#include "base/sys/mountinfo.h"

namespace roam::agent {

namespace {

class SystemDesktopOs final : public DesktopOs {
 public:
  void sync(const std::string& home) override {
    int fd = ::open(home.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    ::syncfs(fd);
    ::close(fd);
  }

  Status release_busy(const std::string& home, bool force, int grace_ms) override {
    // The home and the export it was bound from: a process that opened the
    // disk through the export must let go too, or it writes on after the
    // detach until the broker kills roamfs.
    return agent::release_busy(mounts_of_same_filesystem(read_mountinfo(), home), force, grace_ms);
  }

  std::optional<std::string> first_failing_check(const std::vector<std::string>& commands,
                                                 int timeout_ms) override {
    return agent::first_failing_check(commands, timeout_ms);
  }

  std::vector<std::string> fenced_mounts(const std::string& home_base) override {
    std::vector<std::string> fenced;
    for (const auto& m : read_mountinfo()) {
      if (m.fstype != "fuse.roamfs" || m.mount_point.rfind(home_base + "/", 0) != 0) continue;
      struct statfs fs {};
      if (::statfs(m.mount_point.c_str(), &fs) != 0 && errno == ENOTCONN) fenced.push_back(m.mount_point);
    }
    return fenced;
  }

  void unmount_lazily(const std::string& mount_point) override { ::umount2(mount_point.c_str(), MNT_DETACH); }

  Status give_home(const std::string& home, const std::string& user) override {
    struct stat st {};
    if (::stat(home.c_str(), &st) != 0) return errno_error("cannot stat " + home);
    if (st.st_uid != 0) return Status::ok();
    std::vector<char> buf(16384);
    passwd pw{}, *found = nullptr;
    if (::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found || found->pw_uid == 0)
      return Status::ok();
    if (::chown(home.c_str(), found->pw_uid, found->pw_gid) != 0 || ::chmod(home.c_str(), 0700) != 0)
      return errno_error("cannot give " + home + " to " + user);
    return Status::ok();
  }
};

}  // namespace

std::unique_ptr<DesktopOs> make_desktop_os() { return std::make_unique<SystemDesktopOs>(); }

}  // namespace roam::agent
