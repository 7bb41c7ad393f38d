// roamfs --userns: a disk served to a user namespace (how the broker serves a
// container desktop, fusefs/fuse/userns_mount.h). Its processes' uids reach
// roamfs as the namespace sees them, and the store keeps those (the same
// store, mounted on the host without --userns, shows the raw ids); the host's
// processes, root included, are refused; a path that is not a user namespace
// stops roamfs with one sentence; .history works for the namespace's users
// with the permissions of then.
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "posix_helpers.h"

using namespace roamtest;

namespace {

constexpr uid_t kFirstHostId = 2'100'000'000;  // the namespace's 0..65535
constexpr uid_t kAlice = 1000;                 // as the namespace sees her

// A process alone in a new user namespace whose ids 0..65535 are host ids
// kFirstHostId onwards; killed by the destructor.
class UserNamespace {
 public:
  UserNamespace() {
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      char c = ::unshare(CLONE_NEWUSER) == 0 ? 'y' : 'n';
      [[maybe_unused]] auto n = ::write(ready[1], &c, 1);
      ::pause();
      ::_exit(0);
    }
    ::close(ready[1]);
    char c = 0;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    ::close(ready[0]);
    REQUIRE(c == 'y');
    const std::string map = "0 " + std::to_string(kFirstHostId) + " 65536\n";
    write_file(proc("uid_map"), map);
    write_file(proc("gid_map"), map);
  }
  ~UserNamespace() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  UserNamespace(const UserNamespace&) = delete;
  UserNamespace& operator=(const UserNamespace&) = delete;

  std::string handle() const { return proc("ns/user"); }

  // Runs `fn` in a child that joined the namespace as `uid` (gid = uid).
  int run_as(uid_t uid, const std::function<bool()>& fn) const {
    const std::string ns = handle();
    return in_child([&] {
      int fd = ::open(ns.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || ::setns(fd, CLONE_NEWUSER) != 0 || !become(uid, uid)) return 1;
      return fn() ? 0 : 2;
    });
  }

 private:
  std::string proc(const std::string& what) const { return "/proc/" + std::to_string(pid_) + "/" + what; }
  pid_t pid_ = -1;
};

// `roamfs STORE MNT -f EXTRA...` in the background; REQUIREs the mount to
// appear in the mount table (it cannot be stat()ed from here).
pid_t start_roamfs(const std::string& store, const std::string& mnt, const std::vector<std::string>& extra) {
  std::vector<std::string> argv{roamfs_bin(), store, mnt, "-f"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  std::string type;
  for (int i = 0; i < 5000 && !(is_mounted(mnt, &type) && type == "fuse.roamfs"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  REQUIRE(type == "fuse.roamfs");
  return pid;
}

// Detaches the mount and REQUIREs roamfs to end by itself within 30 s, with
// status 0 (it is SIGKILLed otherwise).
void stop_roamfs(pid_t pid, const std::string& mnt) {
  REQUIRE(::umount2(mnt.c_str(), MNT_DETACH) == 0);
  int status = 0;
  bool ended = false;
  for (int i = 0; i < 3000 && !ended; ++i) {
    ended = ::waitpid(pid, &status, WNOHANG) == pid;
    if (!ended) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!ended) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  REQUIRE(ended);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

// Clears every capability of the calling thread (effective, permitted,
// inheritable).
bool drop_capabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  return ::syscall(SYS_capset, &header, data) == 0;
}

uid_t owner_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_uid : static_cast<uid_t>(-1);
}

}  // namespace

TEST_CASE("roamfs --userns keeps the namespace's uids and refuses the host", "[integration]") {
  TempTree dir("userns");
  const std::string store = dir.path + "/store", mnt = dir.path + "/mnt";
  REQUIRE(roamctl({"mkfs", store}).exit_code() == 0);
  REQUIRE(::mkdir(mnt.c_str(), 0755) == 0);
  UserNamespace ns;
  pid_t pid = start_roamfs(store, mnt, {"--userns", ns.handle()});

  struct stat st {};
  CHECK(::stat(mnt.c_str(), &st) == -1);
  CHECK(errno == EACCES);
  // The namespace's root gives the disk to alice, who writes a file.
  CHECK(ns.run_as(0, [&] { return ::chown(mnt.c_str(), kAlice, kAlice) == 0; }) == 0);
  CHECK(ns.run_as(kAlice, [&] {
          write_file(mnt + "/diary", "dear diary");
          return owner_of(mnt + "/diary") == kAlice && owner_of(mnt) == kAlice;
        }) == 0);
  std::vector<LogRecord> log = read_log(store, {"--path", "/diary", "--op", "create"});
  REQUIRE(log.size() == 1);
  CHECK(log[0].num("uid") == kAlice);
  stop_roamfs(pid, mnt);

  // The store holds 1000, not the host's 2100001000.
  pid = start_roamfs(store, mnt, {});
  CHECK(owner_of(mnt + "/diary") == kAlice);
  CHECK(read_file(mnt + "/diary") == "dear diary");
  stop_roamfs(pid, mnt);
}

TEST_CASE("inside the namespace, alice reads her old version through .history; not root's file of then", "[integration]") {
  TempTree dir("userns-history");
  const std::string store = dir.path + "/store", mnt = dir.path + "/mnt";
  REQUIRE(roamctl({"mkfs", store}).exit_code() == 0);
  REQUIRE(::mkdir(mnt.c_str(), 0755) == 0);
  UserNamespace ns;
  pid_t pid = start_roamfs(store, mnt, {"--userns", ns.handle()});
  CHECK(ns.run_as(0, [&] {
          write_file(mnt + "/root-only", "then root's");
          return ::chmod((mnt + "/root-only").c_str(), 0600) == 0 && ::chown(mnt.c_str(), kAlice, kAlice) == 0;
        }) == 0);
  CHECK(ns.run_as(kAlice, [&] {
          write_file(mnt + "/thesis", "draft 1");
          return ::fsync(::open((mnt + "/thesis").c_str(), O_RDONLY)) == 0;
        }) == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const std::string then = ".history/" + epoch_arg(wall_ns());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(ns.run_as(0, [&] { return ::chmod((mnt + "/root-only").c_str(), 0644) == 0; }) == 0);
  CHECK(ns.run_as(kAlice, [&] {
          write_file(mnt + "/thesis", "draft 2, worse");
          return read_file(mnt + "/" + then + "/thesis") == "draft 1";
        }) == 0);
  CHECK(ns.run_as(kAlice, [&] {
          // Joined as host root, the child keeps its capabilities in the
          // namespace through setresuid (its uid there was the overflow id,
          // not 0): drop them, as a desktop user has none.
          if (!drop_capabilities()) return false;
          errno = 0;
          const int fd = ::open((mnt + "/" + then + "/root-only").c_str(), O_RDONLY);
          return fd < 0 && errno == EACCES;
        }) == 0);
  CHECK(ns.run_as(kAlice, [&] { return read_file(mnt + "/root-only") == "then root's"; }) == 0);
  stop_roamfs(pid, mnt);
}

TEST_CASE("roamfs --userns with a path that is not a user namespace says so", "[integration]") {
  TempTree dir("userns-bad");
  const std::string store = dir.path + "/store", mnt = dir.path + "/mnt";
  REQUIRE(roamctl({"mkfs", store}).exit_code() == 0);
  REQUIRE(::mkdir(mnt.c_str(), 0755) == 0);
  ProcResult r = run({roamfs_bin(), store, mnt, "-f", "--userns", "/proc/self/ns/net"}, 30);
  INFO(r.describe());
  CHECK(r.exit_code() == 1);
  CHECK(r.err.find("is a namespace, but not a user namespace") != std::string::npos);
  CHECK_FALSE(is_mounted(mnt));
}
