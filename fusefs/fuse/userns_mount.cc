#include "fusefs/fuse/userns_mount.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <cstring>

#include "base/sys/files.h"

namespace roam {

namespace {

// What the child did last, for the error message.
enum class Step : int32_t { kJoin, kMountNs, kOpenDevice, kFsopen, kConfigure, kCreate, kFsmount, kDone };

constexpr std::array<const char*, 7> kStepNames = {
    "cannot join the user namespace", "cannot make a mount namespace", "cannot open /dev/fuse", "fsopen(fuse)",
    "cannot configure the FUSE filesystem", "cannot create the FUSE filesystem", "fsmount"};

// The child's report: the step it failed at (with errno), or kDone with the
// two descriptors attached.
struct Report {
  Step step;
  int32_t err;
};

// Sends `r`, with `fds` attached when there are any. Async-signal-safe.
void send_report(int sock, Report r, const int* fds, size_t n) {
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
  iovec iov{&r, sizeof r};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (n > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(n * sizeof(int));
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(n * sizeof(int));
    std::memcpy(CMSG_DATA(cm), fds, n * sizeof(int));
  }
  [[maybe_unused]] auto sent = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
}

bool set_string(int fs, const char* key, const char* value) {
  return ::fsconfig(fs, FSCONFIG_SET_STRING, key, value, 0) == 0;
}

bool set_flag(int fs, const char* key) { return ::fsconfig(fs, FSCONFIG_SET_FLAG, key, nullptr, 0) == 0; }

// The FUSE parameters of connection `dev` (fsconfig on `fs`).
bool configure(int fs, int dev, const UsernsMount& m) {
  char fd_text[16] = {};
  std::to_chars(fd_text, fd_text + sizeof fd_text - 1, dev);
  return set_string(fs, "fd", fd_text) && set_string(fs, "source", m.source.c_str()) &&
         set_string(fs, "subtype", m.subtype.c_str()) && set_string(fs, "rootmode", "40000") &&
         set_string(fs, "user_id", "0") && set_string(fs, "group_id", "0") && set_flag(fs, "allow_other") &&
         set_flag(fs, "default_permissions") && (!m.read_only || set_flag(fs, "ro"));
}

// The child: from joining the namespace to a detached mount. Returns the
// step it failed at, or kDone with fds[0] = /dev/fuse, fds[1] = the mount.
// Only system calls: the parent may have had threads.
Step make_mount(int userns, const UsernsMount& m, int fds[2]) {
  // Not dumpable: the desktop's root, privileged in the namespace we join,
  // must not ptrace us (we hold roamfs's open store).
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (::setns(userns, CLONE_NEWUSER) != 0) return Step::kJoin;
  if (::unshare(CLONE_NEWNS) != 0) return Step::kMountNs;
  fds[0] = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fds[0] < 0) return Step::kOpenDevice;
  const int fs = ::fsopen("fuse", FSOPEN_CLOEXEC);
  if (fs < 0) return Step::kFsopen;
  if (!configure(fs, fds[0], m)) return Step::kConfigure;
  if (::fsconfig(fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) return Step::kCreate;
  unsigned attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (m.read_only ? MOUNT_ATTR_RDONLY : 0);
  fds[1] = ::fsmount(fs, FSMOUNT_CLOEXEC, attrs);
  return fds[1] < 0 ? Step::kFsmount : Step::kDone;
}

// Receives the child's report; on success the two descriptors.
Result<std::array<int, 2>> receive_report(int sock) {
  Report r{};
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
  iovec iov{&r, sizeof r};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  if (n != static_cast<ssize_t>(sizeof r)) return Status::io("the mount helper died without a report");
  if (r.step != Step::kDone) {
    auto step = static_cast<size_t>(r.step);
    return Status::error(r.err, std::string(step < kStepNames.size() ? kStepNames[step] : "?") + ": " +
                                    std::strerror(r.err));
  }
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  if (!cm || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(2 * sizeof(int)))
    return Status::io("the mount helper sent no descriptors");
  std::array<int, 2> fds{};
  std::memcpy(fds.data(), CMSG_DATA(cm), sizeof(int) * 2);
  return fds;
}

Status check_userns(int fd, const std::string& path) {
  if (fd < 0) return errno_error("cannot open the user namespace " + path);
  int type = ::ioctl(fd, NS_GET_NSTYPE);
  if (type < 0) return Status::error(EINVAL, path + " is not a namespace: " + std::strerror(errno));
  if (type != CLONE_NEWUSER) return Status::error(EINVAL, path + " is a namespace, but not a user namespace");
  return Status::ok();
}

// Forks the helper and returns its report.
Result<std::array<int, 2>> run_helper(int userns, const UsernsMount& m) {
  int sock[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sock) != 0) return errno_error("socketpair");
  const pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(sock[0]);
    ::close(sock[1]);
    return Status::error(err, std::string("cannot fork the mount helper: ") + std::strerror(err));
  }
  if (pid == 0) {
    int fds[2] = {-1, -1};
    Step step = make_mount(userns, m, fds);
    send_report(sock[1], Report{step, step == Step::kDone ? 0 : errno}, fds, step == Step::kDone ? 2 : 0);
    ::_exit(0);
  }
  ::close(sock[1]);
  auto fds = receive_report(sock[0]);
  ::close(sock[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return fds;
}

}  // namespace

Result<int> mount_for_userns(const UsernsMount& m) {
  const int userns = ::open(m.userns.c_str(), O_RDONLY | O_CLOEXEC);
  if (Status s = check_userns(userns, m.userns); !s) {
    if (userns >= 0) ::close(userns);
    return s;
  }
  auto fds = run_helper(userns, m);
  ::close(userns);
  if (!fds) return fds.status().with_context("user namespace " + m.userns);
  const auto [dev, mnt] = *fds;
  if (::move_mount(mnt, "", AT_FDCWD, m.mountpoint.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    Status s = errno_error("cannot attach the mount at " + m.mountpoint);
    ::close(mnt);
    ::close(dev);
    return s;
  }
  ::close(mnt);
  return dev;
}

}  // namespace roam
