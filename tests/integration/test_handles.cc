// File handles (name_to_handle_at / open_by_handle_at, what NFS re-exports
// and backup tools keep): a handle opens the same file after the kernel has
// dropped its caches and after roamfs is mounted again, and fails with
// ESTALE only once the file is gone. roamfs negotiates FUSE's export support
// and answers the kernel's lookups of "." and ".." by inode number.
//
// Restores keep that promise: an inode a restore brings back under its own
// number (a deleted file, a removed directory, a file whose data did not
// change) opens by its old handle again; one a restore takes away or replaces
// by a copy with the old data has no name left and is ESTALE, as a file
// renamed over is on ext4 — and an undo of the restore brings it back.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>

#include "posix_helpers.h"

using namespace roamtest;

namespace {

constexpr size_t kMaxHandleBytes = 128;  // MAX_HANDLE_SZ

struct Handle {
  std::unique_ptr<char[]> bytes;
  file_handle* get() const { return reinterpret_cast<file_handle*>(bytes.get()); }
};

Handle handle_of(const std::string& path) {
  Handle h{std::make_unique<char[]>(sizeof(file_handle) + kMaxHandleBytes)};
  h.get()->handle_bytes = kMaxHandleBytes;
  int mount_id = 0;
  REQUIRE_OK(::name_to_handle_at(AT_FDCWD, path.c_str(), h.get(), &mount_id, 0));
  return h;
}

// Drops the kernel's dentries and inodes (and clean pages), so that a handle
// must be resolved by asking roamfs.
void drop_caches() {
  ::sync();
  write_file("/proc/sys/vm/drop_caches", "3");
}

// Opens `h` on the mount at `mnt` and returns what the file holds; "" and
// `*err` set when the open fails.
std::string read_by_handle(const std::string& mnt, const Handle& h, int* err) {
  *err = 0;
  int mount_fd = ::open(mnt.c_str(), O_RDONLY | O_DIRECTORY);
  REQUIRE(mount_fd >= 0);
  int fd = ::open_by_handle_at(mount_fd, h.get(), O_RDONLY);
  *err = fd < 0 ? errno : 0;
  ::close(mount_fd);
  if (fd < 0) return {};
  char buf[256];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// open_by_handle_at of a directory handle: whether it opens.
// open_by_handle_at: the file's inode number, 0 and `*err` set when it fails.
ino_t ino_by_handle(const std::string& mnt, const Handle& h, int* err) {
  int mount_fd = ::open(mnt.c_str(), O_RDONLY | O_DIRECTORY);
  REQUIRE(mount_fd >= 0);
  int fd = ::open_by_handle_at(mount_fd, h.get(), O_PATH);
  *err = fd < 0 ? errno : 0;
  ::close(mount_fd);
  if (fd < 0) return 0;
  struct stat st {};
  REQUIRE(::fstat(fd, &st) == 0);
  ::close(fd);
  return st.st_ino;
}

ino_t ino_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_ino;
}

int open_dir_by_handle(const std::string& mnt, const Handle& h) {
  int mount_fd = ::open(mnt.c_str(), O_RDONLY | O_DIRECTORY);
  REQUIRE(mount_fd >= 0);
  int fd = ::open_by_handle_at(mount_fd, h.get(), O_RDONLY | O_DIRECTORY);
  int err = fd < 0 ? errno : 0;
  if (fd >= 0) ::close(fd);
  ::close(mount_fd);
  return err;
}

}  // namespace

TEST_CASE("file handles survive cache drops and remounts, and go stale only with their file", "[integration]") {
  MountFixture fx;
  REQUIRE_OK(::mkdir(fx.path("d").c_str(), 0755));
  REQUIRE_OK(::mkdir(fx.path("d/e").c_str(), 0755));
  write_file(fx.path("d/e/file"), "contents");
  write_file(fx.path("linked"), "two names");
  REQUIRE_OK(::link(fx.path("linked").c_str(), fx.path("d/other-name").c_str()));
  write_file(fx.path("doomed"), "soon gone");
  const Handle file = handle_of(fx.path("d/e/file"));
  const Handle linked = handle_of(fx.path("linked"));
  const Handle dir = handle_of(fx.path("d/e"));
  const Handle doomed = handle_of(fx.path("doomed"));

  int err = 0;
  drop_caches();
  CHECK(read_by_handle(fx.mnt(), file, &err) == "contents");
  CHECK(err == 0);
  CHECK(read_by_handle(fx.mnt(), linked, &err) == "two names");
  CHECK(err == 0);
  CHECK(open_dir_by_handle(fx.mnt(), dir) == 0);

  fx.remount();
  CHECK(read_by_handle(fx.mnt(), file, &err) == "contents");
  CHECK(err == 0);
  CHECK(open_dir_by_handle(fx.mnt(), dir) == 0);

  REQUIRE_OK(::unlink(fx.path("linked").c_str()));  // one name left
  REQUIRE_OK(::unlink(fx.path("doomed").c_str()));
  drop_caches();
  CHECK(read_by_handle(fx.mnt(), linked, &err) == "two names");
  CHECK(err == 0);
  read_by_handle(fx.mnt(), doomed, &err);
  CHECK(err == ESTALE);
  fx.remount();
  read_by_handle(fx.mnt(), doomed, &err);
  CHECK(err == ESTALE);
}

namespace {

// The files of the restore test, with their handles taken before any change.
struct RestoreCase {
  explicit RestoreCase(const MountFixture& fx) : fx_(fx) {
    REQUIRE_OK(::mkdir(fx.path("d").c_str(), 0755));
    REQUIRE_OK(::mkdir(fx.path("d/sub").c_str(), 0755));
    write_file(fx.path("d/sub/inner"), "inner");
    write_file(fx.path("d/kept"), "kept");
    write_file(fx.path("d/deleted"), "deleted, then restored");
    write_file(fx.path("d/edited"), "old words");
    write_file(fx.path("d/chmodded"), "mode only");
    write_file(fx.path("d/moved"), "moved out");
    sync_mount(fx.mnt());
    for (const char* name : {"d/sub", "d/sub/inner", "d/kept", "d/deleted", "d/edited", "d/chmodded", "d/moved"})
      handles.emplace(name, handle_of(fx.path(name)));
  }

  // What each handle opens as: its content, or the error.
  std::map<std::string, std::string> outcome() const {
    std::map<std::string, std::string> m;
    for (const auto& [name, h] : handles) {
      int err = 0;
      if (name == "d/sub") {
        err = open_dir_by_handle(fx_.mnt(), h);
        m[name] = err ? std::strerror(err) : "a directory";
        continue;
      }
      const std::string content = read_by_handle(fx_.mnt(), h, &err);
      m[name] = err ? std::strerror(err) : content;
    }
    return m;
  }

  std::map<std::string, Handle> handles;

 private:
  const MountFixture& fx_;
};

// The outcome with what the kernel has cached, and again after dropping it.
void check_handles(const RestoreCase& c, const std::map<std::string, std::string>& expected, const char* when) {
  INFO(when << "; expected:\n" << render(expected));
  CHECK(render(c.outcome()) == render(expected));
  drop_caches();
  INFO("after dropping the kernel's caches");
  CHECK(render(c.outcome()) == render(expected));
}

}  // namespace

TEST_CASE("a restore keeps the handles of the inodes it brings back; those it removes or replaces go stale",
          "[integration]") {
  MountFixture fx;
  RestoreCase c(fx);
  const long long moment = last_seq(fx.mnt()) + 1;  // --before-op: everything logged so far
  write_file(fx.path("d/newer"), "made after the moment");
  c.handles.emplace("d/newer", handle_of(fx.path("d/newer")));
  const std::string stale = std::strerror(ESTALE);

  // Changes after the moment, each seen through the handles.
  REQUIRE_OK(::unlink(fx.path("d/deleted").c_str()));
  REQUIRE(run({"rm", "-rf", fx.path("d/sub")}).exit_code() == 0);
  write_file(fx.path("d/edited"), "new words");
  REQUIRE_OK(::chmod(fx.path("d/chmodded").c_str(), 0600));
  REQUIRE_OK(::rename(fx.path("d/moved").c_str(), fx.path("elsewhere").c_str()));
  sync_mount(fx.mnt());
  const std::map<std::string, std::string> changed = {{"d/sub", stale},
                                                      {"d/sub/inner", stale},
                                                      {"d/kept", "kept"},
                                                      {"d/deleted", stale},
                                                      {"d/edited", "new words"},
                                                      {"d/chmodded", "mode only"},
                                                      {"d/moved", "moved out"},
                                                      {"d/newer", "made after the moment"}};
  check_handles(c, changed, "after the changes");

  // The restore brings back the deleted file and directory under their own
  // numbers; the edited file comes back as a copy (its data changed), so its
  // handle names a file with no name left; the newer file is taken away; the
  // moved file stays where it went (a copy comes back in d).
  const Restored r = restore_ok({"restore", fx.mnt(), "/d", "--before-op", std::to_string(moment)});
  REQUIRE(r.changes > 0);
  check_handles(c,
                {{"d/sub", "a directory"},
                 {"d/sub/inner", "inner"},
                 {"d/kept", "kept"},
                 {"d/deleted", "deleted, then restored"},
                 {"d/edited", stale},
                 {"d/chmodded", "mode only"},
                 {"d/moved", "moved out"},
                 {"d/newer", stale}},
                "after the restore");
  int err = 0;
  CHECK(ino_by_handle(fx.mnt(), c.handles.at("d/deleted"), &err) == ino_of(fx.path("d/deleted")));
  CHECK(ino_by_handle(fx.mnt(), c.handles.at("d/moved"), &err) == ino_of(fx.path("elsewhere")));
  CHECK(read_file(fx.path("d/edited")) == "old words");

  // Undoing the restore brings back the edited and the newer file under
  // their numbers, and takes the deleted file and directory away again: every
  // handle is as it was after the changes.
  restore_ok({"restore", fx.mnt(), "/d", "--before-op", std::to_string(r.seq)});
  check_handles(c, changed, "after undoing the restore");
  fx.remount();
  check_handles(c, changed, "after a remount");
}
