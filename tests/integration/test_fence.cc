// The broker's fencing against a FUSE server that never answers (a hung
// roamfs): stop_roamfs (broker/disk_server.h) runs on the broker's only
// thread, so it must not wait on the mount. The hung server here is a
// mount whose /dev/fuse is never read: every request on it, the INIT
// handshake first, waits for ever, as stat() of the mount point would.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "base/sys/mountinfo.h"
#include "broker/disk_server.h"

using namespace std::chrono_literals;

namespace {

// A temporary directory with a FUSE filesystem of type fuse.roamfs mounted
// on it whose server never answers; unmounted and removed on destruction.
class HungMount {
 public:
  HungMount() {
    char tmpl[] = "/tmp/roamdisk-fence-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
    fuse_fd_ = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
    REQUIRE(fuse_fd_ >= 0);
    const std::string opts = "fd=" + std::to_string(fuse_fd_) + ",rootmode=40000,user_id=0,group_id=0";
    REQUIRE(::mount("roamfs:/hung", dir_.c_str(), "fuse.roamfs", MS_NOSUID | MS_NODEV, opts.c_str()) == 0);
  }
  ~HungMount() {
    ::umount2(dir_.c_str(), MNT_DETACH);
    ::close(fuse_fd_);  // aborts the connection: anything still waiting on it fails
    ::rmdir(dir_.c_str());
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  int fuse_fd_ = -1;
};

// Whether stat() of `path` is still waiting after `wait`, in a child (which
// the mount's end releases).
bool stat_hangs(const std::string& path, std::chrono::milliseconds wait) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    struct stat st {};
    ::stat(path.c_str(), &st);
    ::_exit(0);
  }
  std::this_thread::sleep_for(wait);
  int status = 0;
  const bool hangs = ::waitpid(pid, &status, WNOHANG) == 0;
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return hangs;
}

}  // namespace

TEST_CASE("fencing a roamfs that hangs returns at once and removes its mount", "[integration]") {
  HungMount hung;
  REQUIRE(stat_hangs(hung.dir(), 300ms));  // what a stat() on the broker's thread would do
  const roam::broker::DiskServerConfig cfg{"/bin/false", "/nonexistent", "/tmp", 1000, 1000};
  // pid 0: the server is found by its mount point (here: none is a roamfs).
  auto fenced = std::async(std::launch::async, [&] { return roam::broker::stop_roamfs(cfg, 0, hung.dir(), true); });
  REQUIRE(fenced.wait_for(5s) == std::future_status::ready);
  CHECK(fenced.get().is_ok());
  CHECK_FALSE(roam::mount_at(hung.dir()).has_value());
}
