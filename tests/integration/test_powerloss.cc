// Power loss (promise 5 across a machine crash, docs/crash-model.md): a store
// on a loop-mounted ext4 (data=ordered, its default) or XFS, a workload
// running, then roamfs is killed and the filesystem cut off the way a power
// failure would (the shutdown ioctl without a log flush: nothing more reaches
// the disk), and the filesystem is mounted again, replaying its journal. The
// disk must mount with no repair step, hold every file that was fsync'd, and
// pass `roamctl scrub`. (Killing roamfs a moment before the cut leaves the
// disk as a power cut at that moment would: roamfs writes nothing once dead.)
//
// The kernel's writeback is made eager for the test (vm.dirty_expire and
// dirty_writeback 0.1 s), so that pages reach the disk between syncs in
// whatever order writeback picks: what destroyed stores of format 2 (LMDB
// without syncs) on ext4 data=ordered and XFS.
//
// Needs loop devices; where there are none (a container without /dev/loop*),
// the test says so and exits 77, which meson counts as skipped. A filesystem
// whose mkfs is missing is skipped with a note.
// ROAM_POWERLOSS_ROUNDS (cuts per filesystem, default 4), ROAM_POWERLOSS_FS
// (comma-separated, default "ext4-ordered,xfs"; also "ext4-journal") and
// ROAM_SEED tune it.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "crash_workload.h"
#include "posix_helpers.h"

using namespace roamtest;

namespace {

// EXT4_IOC_SHUTDOWN and XFS_IOC_GOINGDOWN are one ioctl number with one
// meaning of flag 2 (NOLOGFLUSH); linux/ext4.h is not a uapi header
// everywhere, and the values are fixed ABI.
constexpr unsigned long kIocShutdown = _IOR('X', 125, uint32_t);
constexpr uint32_t kShutdownNoLogFlush = 2;

// Sets a /proc/sys knob for the life of the object. Where /proc/sys is
// read-only (some containers) it says so and leaves the knob alone: the test
// still runs, with writeback as the machine has it.
class Sysctl {
 public:
  Sysctl(std::string path, const std::string& value) : path_(std::move(path)) {
    try {
      old_ = read_file(path_);
      write_file(path_, value);
      set_ = true;
    } catch (const std::exception& e) {
      std::printf("powerloss: note: cannot set %s (%s); writeback stays as it is\n", path_.c_str(), e.what());
    }
  }
  ~Sysctl() {
    if (!set_) return;
    try {
      write_file(path_, old_);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "roamtest: cannot restore %s: %s\n", path_.c_str(), e.what());
    }
  }
  Sysctl(const Sysctl&) = delete;
  Sysctl& operator=(const Sysctl&) = delete;

 private:
  std::string path_, old_;
  bool set_ = false;
};

// A filesystem under test: how to make it and how to mount it.
struct FsKind {
  std::string name;   // "ext4-ordered"
  std::string mkfs;   // shell command run with the image path appended
  std::string mount_options;
};

std::optional<FsKind> fs_kind(const std::string& name) {
  if (name == "ext4-ordered") return FsKind{name, "mkfs.ext4 -q -F", "loop,data=ordered"};
  if (name == "ext4-journal") return FsKind{name, "mkfs.ext4 -q -F", "loop,data=journal"};
  if (name == "xfs") return FsKind{name, "mkfs.xfs -q -f", "loop"};
  return std::nullopt;
}

// A filesystem in an image file, loop-mounted.
class LoopFs {
 public:
  LoopFs(const std::string& dir, FsKind kind)
      : image_(dir + "/" + kind.name + ".img"), mnt_(dir + "/" + kind.name), kind_(std::move(kind)) {
    REQUIRE(::mkdir(mnt_.c_str(), 0755) == 0);
  }
  ~LoopFs() {
    if (mounted_) run({"umount", "-l", mnt_});
    ::unlink(image_.c_str());
  }
  LoopFs(const LoopFs&) = delete;
  LoopFs& operator=(const LoopFs&) = delete;

  // Makes the filesystem; false (with the reason) when its mkfs fails.
  bool make(std::string* why) {
    ProcResult mk = run({"sh", "-c", "truncate -s 1G '" + image_ + "' && " + kind_.mkfs + " '" + image_ + "'"});
    *why = mk.describe();
    return mk.exit_code() == 0;
  }
  // Mounts it (replaying the journal after a cut); false when loop mounts are
  // not possible here.
  bool mount(std::string* why = nullptr) {
    ProcResult m = run({"mount", "-o", kind_.mount_options, image_, mnt_});
    if (why) *why = m.describe();
    mounted_ = m.exit_code() == 0;
    return mounted_;
  }
  // What a power failure does: from now on nothing reaches the disk.
  void cut_power() {
    int fd = ::open(mnt_.c_str(), O_RDONLY | O_DIRECTORY);
    REQUIRE(fd >= 0);
    uint32_t flags = kShutdownNoLogFlush;
    const int rc = ::ioctl(fd, kIocShutdown, &flags);
    INFO("shutdown ioctl: " << std::strerror(errno));
    ::close(fd);
    REQUIRE(rc == 0);
  }
  void unmount() {
    ProcResult u = run({"umount", mnt_});
    INFO(u.describe());
    REQUIRE(u.exit_code() == 0);
    mounted_ = false;
  }
  const std::string& dir() const { return mnt_; }
  const std::string& name() const { return kind_.name; }

 private:
  std::string image_, mnt_;
  FsKind kind_;
  bool mounted_ = false;
};

std::vector<std::string> split_commas(const std::string& list) {
  std::vector<std::string> out;
  std::istringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// `rounds` cuts under a running workload on `fs`, each followed by a
// remount and the full check.
void cut_and_check(LoopFs& fs, const std::string& work, int rounds, std::mt19937_64& rng) {
  MountFixture fx(MountOptions{fs.dir(), {}, 10});
  {
    ProcResult df = roamctl({"df", "--json", fx.store()});
    INFO(df.describe());
    CHECK(df.out.find("\"power_loss_safe\":true") != std::string::npos);
  }
  std::vector<Durable> durable;
  for (int round = 0; round < rounds; ++round) {
    INFO(fs.name() << " round " << round);
    const std::string rel = "r" + std::to_string(round);
    REQUIRE(::mkdir(fx.path(rel).c_str(), 0755) == 0);
    const std::string records = work + "/durable-" + fs.name() + "-" + std::to_string(round) + ".txt";
    const uint64_t wseed = rng();
    Churn churn(fx.mnt(), rel, records, wseed, 3);  // few fsyncs: long unsynced stretches

    // Long enough for syncs, and for writeback between them.
    const auto delay = std::chrono::milliseconds(1000 + rng() % 3000);
    std::this_thread::sleep_for(delay);
    // roamfs first: once the filesystem is shut down, a fault on LMDB's map
    // of a page not in memory kills roamfs with SIGBUS, which the fixture
    // would report as a crash.
    fx.kill9();
    fs.cut_power();
    auto fresh = churn.stop(round);
    durable.insert(durable.end(), fresh.begin(), fresh.end());

    // The machine comes back: the filesystem replays its journal; roamfs
    // mounts the store as it finds it.
    fs.unmount();
    std::string why;
    const bool remounted = fs.mount(&why);
    INFO("mounting " << fs.name() << " again: " << why);
    REQUIRE(remounted);
    fx.mount();
    const AfterCrash after = check_after_crash(fx, durable, round);
    std::printf("powerloss %s round %d: power cut after %lld ms; %zu durable files from this round, %zu in all; "
                "%zu entries; %zu log records\n",
                fs.name().c_str(), round, static_cast<long long>(delay.count()), fresh.size(), durable.size(),
                after.entries, after.log_records);
    std::fflush(stdout);
  }
  fx.unmount();
}

}  // namespace

TEST_CASE("a power loss on ext4 data=ordered or XFS loses nothing fsync'd and needs no repair", "[powerloss]") {
  const uint64_t seed = env_u64("ROAM_SEED", 4242);
  const int rounds = static_cast<int>(env_u64("ROAM_POWERLOSS_ROUNDS", 4));
  const char* fs_env = std::getenv("ROAM_POWERLOSS_FS");
  const std::string fs_list = fs_env ? fs_env : "ext4-ordered,xfs";
  std::printf("powerloss: ROAM_SEED=%" PRIu64 " ROAM_POWERLOSS_ROUNDS=%d ROAM_POWERLOSS_FS=%s\n", seed, rounds,
              fs_list.c_str());
  std::fflush(stdout);
  INFO("reproduce with ROAM_SEED=" << seed << " ROAM_POWERLOSS_ROUNDS=" << rounds << " ROAM_POWERLOSS_FS=" << fs_list);
  std::mt19937_64 rng(seed);

  Sysctl expire("/proc/sys/vm/dirty_expire_centisecs", "10");
  Sysctl writeback("/proc/sys/vm/dirty_writeback_centisecs", "10");
  int tested = 0;
  for (const std::string& name : split_commas(fs_list)) {
    const std::optional<FsKind> kind = fs_kind(name);
    INFO("ROAM_POWERLOSS_FS names " << name);
    REQUIRE(kind);
    const TempTree work_tree("powerloss");  // removed after `fs` below is unmounted
    LoopFs fs(work_tree.path, *kind);
    if (std::string why; !fs.make(&why)) {
      std::printf("powerloss: note: %s not tested: cannot make it (%s)\n", name.c_str(), why.c_str());
      continue;
    }
    if (std::string why; !fs.mount(&why)) {
      std::printf("powerloss: skipped: cannot loop-mount an image here (%s)\n", why.c_str());
      std::fflush(stdout);
      std::exit(77);
    }
    cut_and_check(fs, work_tree.path, rounds, rng);
    ++tested;
  }
  CHECK(tested > 0);
}
