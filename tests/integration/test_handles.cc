// File handles (name_to_handle_at / open_by_handle_at, what NFS re-exports
// and backup tools keep): a handle opens the same file after the kernel has
// dropped its caches and after roamfs is mounted again, and fails with
// ESTALE only once the file is gone. roamfs negotiates FUSE's export support
// and answers the kernel's lookups of "." and ".." by inode number.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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
