// Helpers for tests that mount a real roamfs: running the binaries under test,
// temporary directories, a mounted-store fixture, and `roamctl log --json`.
//
// The binaries come from the environment (ROAMFS, ROAMCTL; meson sets them).
// MountFixture makes a store with `roamctl mkfs`, runs `roamfs STORE MNT -f`
// as its own child (so the test owns the pid), and waits until the mount is
// live. On destruction it unmounts (fusermount3 -u, falling back to umount -l),
// reaps roamfs and removes its temporary directory. roamfs's stderr goes to
// DIR/roamfs.log; a sanitizer report in it or a non-zero exit after a clean
// unmount fails the test.
#pragma once

#include <sys/types.h>
#include <sys/wait.h>

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace roamtest {

// Paths of the binaries under test; a missing variable fails the test.
std::string roamfs_bin();
std::string roamctl_bin();

struct ProcResult {
  int wait_status = 0;
  bool timed_out = false;
  std::string out, err;

  bool exited() const { return !timed_out && WIFEXITED(wait_status); }
  int exit_code() const { return exited() ? WEXITSTATUS(wait_status) : -1; }
  bool signaled() const { return !timed_out && WIFSIGNALED(wait_status); }
  // "exit 1", "killed by signal 11 (Segmentation fault)" or "timed out", then
  // stdout and stderr; for failure messages.
  std::string describe() const;
};

// Runs argv (argv[0] is looked up in PATH) with stdin from /dev/null and
// stdout/stderr captured. Kills it with SIGKILL after `timeout_s`.
ProcResult run(const std::vector<std::string>& argv, double timeout_s = 60);
// run() of roamctl with these arguments.
ProcResult roamctl(const std::vector<std::string>& args, double timeout_s = 120);

// A new directory /tmp/roamtest-TAG-XXXXXX, mode 0755 (so that tests can act
// as other users inside it).
std::string make_temp_dir(const std::string& tag);
// rm -rf that never crosses into another filesystem (a mount left behind by a
// failed test is skipped, not emptied through FUSE).
void remove_tree(const std::string& path);
// A make_temp_dir directory, removed with remove_tree when it goes out of scope.
struct TempTree {
  explicit TempTree(const std::string& tag) : path(make_temp_dir(tag)) {}
  ~TempTree() { remove_tree(path); }
  TempTree(const TempTree&) = delete;
  TempTree& operator=(const TempTree&) = delete;
  const std::string path;
};
// Whether something is mounted exactly at `path`; `fstype` gets its type.
bool is_mounted(const std::string& path, std::string* fstype = nullptr);
std::string read_file(const std::string& path);  // whole file; throws on error
void write_file(const std::string& path, const std::string& data);  // creates/truncates; throws on error
// True when `text` holds an AddressSanitizer/UBSan/LeakSanitizer report.
bool has_sanitizer_report(const std::string& text);
std::string self_comm();  // /proc/self/comm

// TIME arguments: the wall clock in ns, and a moment as "@1764238500.123456789"
// and as "2026-11-27T09:42:54.123456789Z".
int64_t wall_ns();
std::string epoch_arg(int64_t ns);
std::string iso_arg(int64_t ns);

// FNV-1a, for content fingerprints.
uint64_t fnv1a(const void* data, size_t len, uint64_t h = 1469598103934665603ull);
// `n` bytes from `rng` (eight per draw): file content for the tests.
std::string random_bytes(std::mt19937_64& rng, size_t n);

struct MountOptions {
  // Directory in which to create the store ("" = inside the fixture's temp
  // directory). The store itself is PARENT/store.
  std::string store_parent;
  std::vector<std::string> extra_args;  // more roamfs arguments
  double mount_timeout_s = 10;
};

class MountFixture {
 public:
  MountFixture() : MountFixture(MountOptions{}) {}
  explicit MountFixture(MountOptions options);
  ~MountFixture();
  MountFixture(const MountFixture&) = delete;
  MountFixture& operator=(const MountFixture&) = delete;

  const std::string& dir() const { return dir_; }      // the fixture's temp directory
  const std::string& store() const { return store_; }  // absolute
  const std::string& mnt() const { return mnt_; }      // absolute
  std::string path(const std::string& rel) const { return mnt_ + "/" + rel; }
  pid_t pid() const { return pid_; }
  bool mounted() const { return pid_ > 0; }

  // Starts roamfs -f and waits until the mount answers (REQUIREs it).
  void mount();
  // Clean unmount: fusermount3 -u (retried, then umount -l), reap roamfs;
  // REQUIREs exit status 0 and no sanitizer report.
  void unmount();
  // SIGKILL roamfs, reap it and lazily unmount the dead mount.
  void kill9();
  // unmount() if mounted, then mount() the same store on the same mount point
  // (with other roamfs arguments from then on, if given).
  void remount();
  void remount(std::vector<std::string> extra_args);
  // Everything roamfs wrote to stderr, across mounts.
  std::string roamfs_log() const;

 private:
  // Returns "" on success or what went wrong.
  std::string stop(bool clean);

  MountOptions options_;
  std::string dir_, store_, mnt_, log_path_;
  pid_t pid_ = -1;
};

// One line of `roamctl log --json`: every member as text (strings unescaped,
// numbers as written).
struct LogRecord {
  std::map<std::string, std::string> fields;
  std::string line;  // as printed
  std::string get(const std::string& key) const;
  long long num(const std::string& key) const;  // 0 when absent
};

// Parses one flat JSON object; false on a syntax error.
bool parse_json_object(const std::string& line, std::map<std::string, std::string>& out);
// Runs `roamctl log TARGET --json EXTRA...`, REQUIREs exit 0 and well-formed lines.
std::vector<LogRecord> read_log(const std::string& target, const std::vector<std::string>& extra = {});

// A one-line-per-record rendering of `records`, for failure messages.
std::string render(const std::vector<LogRecord>& records);

}  // namespace roamtest
