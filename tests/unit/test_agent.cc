// The agent's side of a switch (agent/desktop.h) with a fake mount driver
// and a fake OS: what it answers to Detach and Attach, and what it reports
// and unmounts every heartbeat interval. No socket, mount or process. And
// the users' socket (agent/user_socket.h), on a real socket.
#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <set>

#include "agent/busy.h"
#include "agent/desktop.h"
#include "agent/user_socket.h"
#include "protocol/local_socket.h"
#include "tests/unit/helpers.h"

using namespace roam;
using namespace roam::agent;
using namespace std::chrono_literals;

namespace {

// Homes mounted by path, as the `bind` driver would leave them.
class FakeDriver final : public MountDriver {
 public:
  Status attach(const std::string& export_path, const std::string& home) override {
    if (!attach_result) return attach_result;
    mounts[home] = export_path;
    return Status::ok();
  }
  Status detach(const std::string& home) override {
    if (!detach_result) return detach_result;
    mounts.erase(home);
    return Status::ok();
  }
  bool mounted(const std::string& home) const override { return mounts.count(home) != 0; }

  std::map<std::string, std::string> mounts;  // home -> export path
  Status attach_result;
  Status detach_result;
};

struct ReleaseCall {
  std::string home;
  bool force;
  int grace_ms;
};

// Processes holding files under a home, health checks that pass or fail,
// fenced mounts: whatever the test sets.
class FakeOs final : public DesktopOs {
 public:
  void sync(const std::string& home) override { synced.push_back(home); }
  Status release_busy(const std::string& home, bool force, int grace_ms) override {
    releases.push_back({home, force, grace_ms});
    if (busy.empty()) return Status::ok();
    if (!force) return Status::error(EBUSY, "1 process(es) hold files under " + home + ": " + *busy.begin());
    busy.clear();  // SIGTERM, then SIGKILL: gone
    return Status::ok();
  }
  // Runs on the Desktop's health thread: everything it touches is under mu.
  std::optional<std::string> first_failing_check(const std::vector<std::string>& commands, int) override {
    std::unique_lock lock(mu);
    ++checks_run;
    changed.notify_all();
    checked = commands;
    auto result = failing;
    changed.wait(lock, [this] { return !hang; });
    return result;
  }
  // Waits (at most 5 s) until `n` checks have started; how many have.
  int wait_runs(int n) {
    std::unique_lock lock(mu);
    changed.wait_for(lock, 5s, [this, n] { return checks_run >= n; });
    return checks_run;
  }
  void set_hang(bool on) {
    std::lock_guard lock(mu);
    hang = on;
    changed.notify_all();
  }
  // Runs on the Desktop's fence-scan thread: what it shares is under mu.
  std::vector<FencedMount> fenced_mounts(const std::string& home_base) override {
    std::lock_guard lock(mu);
    asked_base = home_base;
    std::vector<FencedMount> found;
    for (const auto& [point, id] : fenced) found.push_back({point, id});
    return found;
  }
  std::string base_asked() {
    std::lock_guard lock(mu);
    return asked_base;
  }
  // As the real one: only the mount the look found, not a newer one there.
  void unmount_fenced(const FencedMount& m) override {
    std::lock_guard lock(mu);
    auto it = mounted_ids.find(m.mount_point);
    if (it == mounted_ids.end() || it->second != m.mount_id) return;
    unmounted.push_back(m.mount_point);
    fenced.erase(m.mount_point);
    mounted_ids.erase(it);
  }
  // A fenced mount at `point`, with mount id `id`.
  void fence(const std::string& point, uint64_t id) {
    std::lock_guard lock(mu);
    fenced[point] = id;
    mounted_ids[point] = id;
  }
  // A new, live mount at `point` replaces whatever was there.
  void remount(const std::string& point, uint64_t id) {
    std::lock_guard lock(mu);
    fenced.erase(point);
    mounted_ids[point] = id;
  }
  Status give_home(const std::string& home, const std::string& user) override {
    given.emplace_back(home, user);
    return give_result;
  }

  std::set<std::string> busy;  // process names under the home being detached
  std::optional<std::string> failing;
  std::map<std::string, uint64_t> fenced;       // fenced mount point -> its mount id
  std::map<std::string, uint64_t> mounted_ids;  // every mount point -> its mount id
  std::vector<std::string> synced;
  std::vector<ReleaseCall> releases;
  std::mutex mu;
  std::condition_variable changed;
  bool hang = false;  // checks do not return until set_hang(false)
  int checks_run = 0;
  std::vector<std::string> checked;
  std::string asked_base;
  std::vector<std::string> unmounted;
  std::vector<std::pair<std::string, std::string>> given;  // (home, user) of each give_home
  Status give_result;
};

constexpr char kExport[] = "/run/roamdisk/exports/D/alice@3";

struct World {
  explicit World(std::vector<std::string> checks = {}, std::string export_dir = {})
      : desktop({"/homes", std::move(checks), 1000, 10000, std::move(export_dir), "10.201.0.1"}, driver, os) {}

  proto::DetachDone detach(uint64_t id, bool force) {
    return only<proto::DetachDone>(desktop.on_message(proto::Detach{id, "alice", force, 2000}));
  }
  proto::AttachDone attach(uint64_t id) {
    return only<proto::AttachDone>(desktop.on_message(proto::Attach{id, "alice", kExport}));
  }
  // The Damage messages of an interval at `now`, with the checks it started
  // given time to finish and be reported (at a second interval, as at the
  // same instant: checks run on a thread of their own).
  std::vector<proto::Damage> damage_at(Desktop::Clock::time_point now) {
    std::vector<proto::Damage> out = damage_of(desktop.on_interval(now));
    while (desktop.health_check_running() || desktop.fence_scan_running()) std::this_thread::sleep_for(1ms);
    for (const auto& d : damage_of(desktop.on_interval(now))) out.push_back(d);
    return out;
  }
  static std::vector<proto::Damage> damage_of(const std::vector<proto::Message>& messages) {
    std::vector<proto::Damage> out;
    for (const auto& m : messages) {
      const auto* d = std::get_if<proto::Damage>(&m);
      REQUIRE(d != nullptr);  // nothing else is sent on an interval
      out.push_back(*d);
    }
    return out;
  }
  template <typename T>
  static T only(const std::vector<proto::Message>& out) {
    REQUIRE(out.size() == 1);
    const T* m = std::get_if<T>(&out[0]);
    REQUIRE(m != nullptr);
    return *m;
  }

  FakeDriver driver;
  FakeOs os;
  Desktop desktop;
};

const Desktop::Clock::time_point kT0 = Desktop::Clock::time_point{} + 24h;

}  // namespace

// ---------------------------------------------------------------- attach

TEST_CASE("an attach mounts the export at HOME_BASE/USER and says so", "[agent]") {
  World w;
  auto done = w.attach(41);
  CHECK(done.request_id == 41);
  CHECK(done.code == 0);
  REQUIRE(w.driver.mounts.count("/homes/alice") == 1);
  CHECK(w.driver.mounts["/homes/alice"] == kExport);
  CHECK(w.driver.mounts.size() == 1);
}

TEST_CASE("an attach gives the home to its user, after the mount", "[agent]") {
  World w;
  REQUIRE(w.attach(42).code == 0);
  REQUIRE(w.os.given.size() == 1);
  CHECK(w.os.given[0] == std::make_pair(std::string("/homes/alice"), std::string("alice")));
}

TEST_CASE("a home that cannot be given to its user fails the attach with the reason", "[agent]") {
  World w;
  w.os.give_result = Status::error(EROFS, "cannot give /homes/alice to alice: Read-only file system");
  auto done = w.attach(43);
  CHECK(done.code == uint64_t{EROFS});
  CHECK(done.message == "cannot give /homes/alice to alice: Read-only file system");
}

TEST_CASE("with an export dir, the export is taken from there by its last component", "[agent]") {
  World w({}, "/run/roam-agent/exports");
  REQUIRE(w.attach(44).code == 0);
  CHECK(w.driver.mounts["/homes/alice"] == "/run/roam-agent/exports/alice@3");
}

TEST_CASE("a remote export goes to the driver as it is, an empty host filled with the broker's", "[agent]") {
  World w({}, "/run/roam-agent/exports");
  const std::string key(64, 'c');
  auto attach = [&](const std::string& where) {
    return World::only<proto::AttachDone>(w.desktop.on_message(proto::Attach{45, "alice", where}));
  };
  REQUIRE(attach("tcp://10.0.0.9:7000#" + key).code == 0);
  CHECK(w.driver.mounts["/homes/alice"] == "tcp://10.0.0.9:7000#" + key);
  REQUIRE(attach("tcp://:7001#" + key).code == 0);
  CHECK(w.driver.mounts["/homes/alice"] == "tcp://10.201.0.1:7001#" + key);
}

TEST_CASE("a failed attach answers the driver's errno and sentence", "[agent]") {
  World w;
  w.driver.attach_result = Status::io("/homes/alice is not the user disk (not a FUSE filesystem)");
  auto done = w.attach(42);
  CHECK(done.request_id == 42);
  CHECK(done.code == uint64_t{EIO});
  CHECK(done.message == "/homes/alice is not the user disk (not a FUSE filesystem)");
  CHECK(w.driver.mounts.empty());
  CHECK(w.os.given.empty());
}

// ---------------------------------------------------------------- detach

TEST_CASE("a detach of a home that is not mounted succeeds, every time", "[agent]") {
  World w;
  for (uint64_t id : {1, 2}) {
    auto done = w.detach(id, false);
    CHECK(done.request_id == id);
    CHECK(done.code == 0);
  }
  CHECK(w.os.releases.empty());  // nothing to release, nothing to sync
  CHECK(w.os.synced.empty());
}

TEST_CASE("a detach syncs and unmounts; busy processes are made to let go, or refuse it", "[agent]") {
  World w;
  w.attach(1);
  w.os.busy = {"vim"};
  SECTION("with force: they are made to let go and the home is unmounted") {
    auto done = w.detach(2, true);
    CHECK(done.request_id == 2);
    CHECK(done.code == 0);
    CHECK_FALSE(w.driver.mounted("/homes/alice"));
  }
  SECTION("without force: EBUSY naming them, and the home stays mounted") {
    auto done = w.detach(2, false);
    CHECK(done.request_id == 2);
    CHECK(done.code == uint64_t{EBUSY});
    CHECK_THAT(done.message, Catch::Contains("vim"));
    CHECK(w.driver.mounts["/homes/alice"] == kExport);
  }
  CHECK(w.os.synced == std::vector<std::string>{"/homes/alice"});
  REQUIRE(w.os.releases.size() == 1);
  CHECK(w.os.releases[0].home == "/homes/alice");
  CHECK(w.os.releases[0].grace_ms == 2000);
  CHECK(w.os.releases[0].force == w.driver.mounts.empty());
}

TEST_CASE("a home the driver cannot unmount stays mounted and the detach says why", "[agent]") {
  World w;
  w.attach(1);
  w.driver.detach_result = Status::error(EBUSY, "files under /homes/alice are still in use");
  auto done = w.detach(2, true);
  CHECK(done.code == uint64_t{EBUSY});
  CHECK(done.message == "files under /homes/alice are still in use");
  CHECK(w.driver.mounted("/homes/alice"));
}

TEST_CASE("a repeated attach or detach is harmless", "[agent]") {
  World w;
  CHECK(w.attach(1).code == 0);
  CHECK(w.attach(1).code == 0);
  CHECK(w.driver.mounts.size() == 1);
  CHECK(w.driver.mounts["/homes/alice"] == kExport);
  CHECK(w.detach(2, true).code == 0);
  CHECK(w.detach(2, true).code == 0);
  CHECK(w.driver.mounts.empty());
  CHECK(w.attach(3).code == 0);
  CHECK(w.driver.mounted("/homes/alice"));
}

TEST_CASE("messages that are not Detach or Attach get no answer", "[agent]") {
  World w;
  CHECK(w.desktop.on_message(proto::Heartbeat{}).empty());
  CHECK(w.desktop.on_message(proto::Reply{0, ENOTCONN, "register first", {}}).empty());
  CHECK(w.driver.mounts.empty());
}

// ---------------------------------------------------------------- every interval

TEST_CASE("a failing health check is reported once, and again after a recovery", "[agent]") {
  World w({"test -w /", "rpm -V coreutils"});
  CHECK(w.damage_at(kT0).empty());
  CHECK(w.os.checks_run == 1);
  CHECK(w.os.checked == std::vector<std::string>{"test -w /", "rpm -V coreutils"});

  w.os.failing = "health check 'test -w /' exited with 1";
  auto damage = w.damage_at(kT0 + 1s);
  REQUIRE(damage.size() == 1);
  CHECK(damage[0].reason == "health check 'test -w /' exited with 1");
  CHECK(w.damage_at(kT0 + 2s).empty());  // still failing: not reported again
  CHECK(w.damage_at(kT0 + 3s).empty());

  w.os.failing.reset();
  CHECK(w.damage_at(kT0 + 4s).empty());
  w.os.failing = "health check 'rpm -V coreutils' exited with 2";
  damage = w.damage_at(kT0 + 5s);
  REQUIRE(damage.size() == 1);
  CHECK(damage[0].reason == "health check 'rpm -V coreutils' exited with 2");
  CHECK(w.os.checks_run == 6);
}

TEST_CASE("health checks run once per health interval, from the first heartbeat on", "[agent]") {
  World w({"true"});
  w.os.failing = "health check 'true' exited with 1";
  CHECK(w.damage_at(kT0).size() == 1);
  CHECK(w.damage_at(kT0 + 500ms).empty());
  CHECK(w.os.checks_run == 1);
  w.damage_at(kT0 + 999ms);
  CHECK(w.os.checks_run == 1);
  w.damage_at(kT0 + 1000ms);
  CHECK(w.os.checks_run == 2);
}

TEST_CASE("a health check that hangs holds up neither the interval nor the heartbeats", "[agent]") {
  // The broker declares a desktop dead after 2 s without a heartbeat; a
  // check may run for 10 s. Every interval must return at once meanwhile.
  World w({"hung-check"});
  w.os.set_hang(true);
  w.os.failing = "health check 'hung-check' timed out or was killed";
  for (int i = 0; i < 5; ++i) {
    auto interval = std::async(std::launch::async, [&w, i] { return w.desktop.on_interval(kT0 + i * 1s); });
    const bool returned = interval.wait_for(2s) == std::future_status::ready;
    CHECK(returned);
    if (!returned) w.os.set_hang(false);  // the check blocked the interval: let the test end
    CHECK(interval.get().empty());
  }
  CHECK(w.os.wait_runs(1) == 1);  // no second run while one is under way
  w.os.set_hang(false);
  while (w.desktop.health_check_running()) std::this_thread::sleep_for(1ms);
  auto damage = World::damage_of(w.desktop.on_interval(kT0 + 6s));
  REQUIRE(damage.size() == 1);
  CHECK(damage[0].reason == "health check 'hung-check' timed out or was killed");
}

TEST_CASE("without health checks nothing is run and nothing reported", "[agent]") {
  World w;
  w.os.failing = "would be damage";
  CHECK(w.damage_at(kT0).empty());
  CHECK(w.os.checks_run == 0);
}

TEST_CASE("a home the broker fenced is unmounted at the next interval", "[agent]") {
  World w;
  w.os.fence("/homes/alice", 61);
  CHECK(w.damage_at(kT0).empty());
  CHECK(w.os.base_asked() == "/homes");
  CHECK(w.os.unmounted == std::vector<std::string>{"/homes/alice"});
  w.damage_at(kT0 + 500ms);
  CHECK(w.os.unmounted.size() == 1);
}

TEST_CASE("a home mounted again since the look found it fenced is left alone", "[agent]") {
  World w;
  w.os.fence("/homes/alice", 61);
  w.desktop.on_interval(kT0);  // the look starts, and finds mount 61 fenced
  for (int i = 0; i < 500 && w.desktop.fence_scan_running(); ++i) std::this_thread::sleep_for(10ms);
  REQUIRE_FALSE(w.desktop.fence_scan_running());
  w.os.remount("/homes/alice", 62);  // detached and attached again: a live mount
  w.desktop.on_interval(kT0 + 500ms);
  CHECK(w.os.unmounted.empty());
}

// ---------------------------------------------------------------- busy processes

TEST_CASE("a disk's other mounts in the desktop (its export) count as its home", "[agent]") {
  const std::vector<MountEntry> mounts{
      {"/", "ext4", "/dev/vda1", "254:1", ""},
      {"/run/roam-agent/exports", "tmpfs", "tmpfs", "0:50", ""},
      {"/run/roam-agent/exports/alice@3", "fuse.roamfs", "roamfs:/s/alice", "0:61", ""},
      {"/run/roam-agent/exports/bob@2", "fuse.roamfs", "roamfs:/s/bob", "0:62", ""},
      {"/homes/alice", "fuse.roamfs", "roamfs:/s/alice", "0:61", ""},
      {"/homes/bob", "fuse.roamfs", "roamfs:/s/bob", "0:62", ""},
  };
  CHECK(mounts_of_same_filesystem(mounts, "/homes/alice") ==
        std::vector<std::string>{"/homes/alice", "/run/roam-agent/exports/alice@3"});
  CHECK(mounts_of_same_filesystem(mounts, "/homes/carol") == std::vector<std::string>{"/homes/carol"});
}

TEST_CASE("a process working under any of the disk's mounts is busy", "[agent]") {
  roam::testing::TempDir home, other_mount;
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::signal(SIGTERM, SIG_DFL);  // not Catch2's handler: the child just ends
    if (::chdir(other_mount.path().c_str()) != 0) ::_exit(1);
    (void)!::write(ready[1], "x", 1);
    ::pause();
    ::_exit(0);
  }
  char c;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  auto holds = [pid](const std::vector<BusyProcess>& busy) {
    return std::any_of(busy.begin(), busy.end(), [pid](const BusyProcess& p) { return p.pid == pid; });
  };
  CHECK_FALSE(holds(processes_using({home.path()})));
  CHECK(holds(processes_using({home.path(), other_mount.path()})));
  CHECK(release_busy({home.path(), other_mount.path()}, false, 0).err() == EBUSY);
  CHECK(release_busy({home.path(), other_mount.path()}, true, 100).is_ok());
  int st = 0;
  ::waitpid(pid, &st, WNOHANG);  // release_busy reaps its own children; if it did not, now
  CHECK(::kill(pid, 0) != 0);    // gone
  ::close(ready[0]);
  ::close(ready[1]);
}

// The users' socket (agent/user_socket.h): who asks is the kernel's word.
namespace {

int connect_to(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  return fd;
}

// Polls the socket's descriptors until a request is whole (at most ~2 s).
std::vector<proto::HistoryRequest> serve(UserSocket& users) {
  for (int round = 0; round < 200; ++round) {
    std::vector<pollfd> fds;
    for (int fd : users.poll_fds()) fds.push_back({fd, POLLIN, 0});
    ::poll(fds.data(), fds.size(), 10);
    for (const auto& p : fds) {
      if (!(p.revents & POLLIN)) continue;
      auto got = users.on_readable(p.fd, UserSocket::Clock::now());
      if (!got.empty()) return got;
    }
  }
  return {};
}

}  // namespace

TEST_CASE("the users' socket fills in who asks from the kernel and answers the client that asked", "[user-socket]") {
  roam::testing::TempDir tmp;
  const std::string path = tmp.sub("run/agent.sock");
  UserSocket users = roam::testing::must(UserSocket::listen(path));
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0666);
  const int client = connect_to(path);
  proto::HistoryRequest lie{77, "bob", 0, 0, "0", 1, "init", "log", "", "", 0, "", "", "", 0, false};
  REQUIRE(proto::write_message(client, lie).is_ok());
  auto got = serve(users);
  REQUIRE(got.size() == 1);
  const proto::HistoryRequest& r = got[0];
  CHECK(r.user.empty());
  CHECK(r.uid == ::getuid());
  CHECK(r.gid == ::getgid());
  CHECK(r.pid == static_cast<uint64_t>(::getpid()));
  CHECK(r.comm != "init");
  CHECK(r.request_id != 77);  // the agent's own id
  CHECK_FALSE(users.on_reply(proto::reply_for(r.request_id + 1, Status::ok())));
  REQUIRE(users.on_reply(proto::Reply{r.request_id, 0, "done", {"a"}}));
  auto reply = proto::read_message(client);
  REQUIRE(reply.is_ok());
  const auto& answer = std::get<proto::Reply>(*reply);
  CHECK(answer.request_id == 77);  // the client's id again
  CHECK(answer.message == "done");
  ::close(client);
}

TEST_CASE("a client that sends something else than a history request is answered EPROTO and dropped",
          "[user-socket]") {
  roam::testing::TempDir tmp;
  UserSocket users = roam::testing::must(UserSocket::listen(tmp.sub("agent.sock")));
  const int client = connect_to(tmp.sub("agent.sock"));
  REQUIRE(proto::write_message(client, proto::SwitchRequest{1, "alice", "B", true}).is_ok());
  CHECK(serve(users).empty());
  auto reply = proto::read_message(client);
  REQUIRE(reply.is_ok());
  CHECK(std::get<proto::Reply>(*reply).code == EPROTO);
  ::close(client);
}

TEST_CASE("the groups of /proc/PID/status, comma-separated", "[user-socket]") {
  CHECK(groups_from_status("Name:\tsh\nGroups:\t27 100 1000 \nNSpid:\t1\n") == "27,100,1000");
  CHECK(groups_from_status("Name:\tsh\nGroups:\t\n") == "");
  CHECK(groups_from_status("Name:\tsh\n") == "");
}
