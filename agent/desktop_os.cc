// The real DesktopOs (desktop.h).
#include <fcntl.h>
#include <pwd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <vector>

#include "agent/busy.h"
#include "agent/desktop.h"
#include "agent/health.h"
#include "base/sys/files.h"
#include "base/sys/mountinfo.h"

namespace roam::agent {

namespace {

// <linux/stat.h> of Linux 6.8; Debian 12's headers predate it.
constexpr unsigned kStatxMntIdUnique = 0x00004000U;

// The id of the mount at `path`: the unique one on Linux 6.8 and later
// (STATX_MNT_ID_UNIQUE), mountinfo's before. No request reaches the
// filesystem (AT_STATX_DONT_SYNC), so a fenced FUSE mount answers too.
std::optional<uint64_t> mount_id_of(const std::string& path) {
  struct statx sx {};
  if (::statx(AT_FDCWD, path.c_str(), AT_STATX_DONT_SYNC | AT_NO_AUTOMOUNT, STATX_MNT_ID | kStatxMntIdUnique,
              &sx) != 0 ||
      !(sx.stx_mask & (STATX_MNT_ID | kStatxMntIdUnique)))
    return std::nullopt;
  return sx.stx_mnt_id;
}

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

  std::vector<FencedMount> fenced_mounts(const std::string& home_base) override {
    std::vector<FencedMount> fenced;
    for (const auto& m : read_mountinfo()) {
      if (m.fstype != "fuse.roamfs" || m.mount_point.rfind(home_base + "/", 0) != 0) continue;
      const auto id = mount_id_of(m.mount_point);  // first: a mount made after the statfs is not taken for it
      struct statfs fs {};
      if (id && ::statfs(m.mount_point.c_str(), &fs) != 0 && errno == ENOTCONN)
        fenced.push_back({m.mount_point, *id});
    }
    return fenced;
  }

  void unmount_fenced(const FencedMount& fenced) override {
    // umount2 takes a path, not a mount: a mount could still land there
    // between this look and the call, but only in these microseconds, not
    // in the interval since the scan.
    if (mount_id_of(fenced.mount_point) == fenced.mount_id) ::umount2(fenced.mount_point.c_str(), MNT_DETACH);
  }

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
