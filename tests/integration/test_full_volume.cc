// A storage volume filled by one disk's writes (issue 12): the writer gets
// ENOSPC, never a lost fsync'd byte; on the full volume `rm`, retention
// changes and GC work, and after `rm` and one `roamctl gc` the space is back
// and writes work with no other step; another disk on the volume keeps
// working throughout. The volume is a 64 MiB tmpfs.
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "posix_helpers.h"

using namespace roamtest;

namespace {

// A small tmpfs, unmounted (lazily) at the end of the test.
struct SmallVolume {
  std::string dir;
  explicit SmallVolume(const std::string& size) : dir(make_temp_dir("vol")) {
    ProcResult m = run({"mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", dir});
    INFO(m.describe());
    REQUIRE(m.exit_code() == 0);
  }
  ~SmallVolume() {
    run({"umount", "-l", dir}, 30);
    remove_tree(dir);
  }
  uint64_t avail() const {
    struct statvfs st {};
    REQUIRE(::statvfs(dir.c_str(), &st) == 0);
    return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  }
  std::string sub(const std::string& name) const {
    const std::string p = dir + "/" + name;
    REQUIRE(::mkdir(p.c_str(), 0755) == 0);
    return p;
  }
};

// 1 MiB chunk `i`: the same bytes each time it is asked for.
std::string chunk(size_t i) {
  std::mt19937_64 rng(1000 + i);
  return random_bytes(rng, 1 << 20);
}

struct FillResult {
  int error = 0;              // the first errno the writer saw
  std::string where;          // "write", "fsync" or "close"
  size_t synced_chunks = 0;   // chunks an fsync reported written
};

// Writes 1 MiB chunks to `path` (fsync after every 4) until something fails
// or `max_chunks` are written.
FillResult fill(const std::string& path, size_t max_chunks) {
  FillResult r;
  const int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  for (size_t i = 0; i < max_chunks && r.error == 0; ++i) {
    const std::string c = chunk(i);
    if (::write(fd, c.data(), c.size()) != static_cast<ssize_t>(c.size())) r.error = errno, r.where = "write";
    else if (i % 4 == 3 && ::fsync(fd) != 0) r.error = errno, r.where = "fsync";
    else if (i % 4 == 3) r.synced_chunks = i + 1;
  }
  if (::close(fd) != 0 && r.error == 0) r.error = errno, r.where = "close";
  return r;
}

void expect_ok(const ProcResult& r) {
  INFO(r.describe());
  CHECK(r.exit_code() == 0);
}

}  // namespace

TEST_CASE("a full volume: ENOSPC, nothing fsync'd lost, and rm + one gc give the space back", "[integration]") {
  SmallVolume vol("64m");
  MountFixture other(MountOptions{vol.sub("b"), {}, 10});  // another user's disk on the same volume
  write_file(other.path("kept"), "other user's file");
  MountFixture fx(MountOptions{vol.sub("a"), {}, 10});

  const FillResult filled = fill(fx.path("big"), 128);  // twice the volume
  INFO("first error from " << filled.where << ": " << std::strerror(filled.error) << "; fsync'd "
                           << filled.synced_chunks << " MiB\n--- roamfs stderr:\n" << fx.roamfs_log());
  REQUIRE(filled.error != 0);
  CHECK((filled.error == ENOSPC || filled.error == EDQUOT));
  REQUIRE(filled.synced_chunks > 0);

  // What fsync said was written is there.
  {
    const std::string big = read_file(fx.path("big"));
    REQUIRE(big.size() >= filled.synced_chunks << 20);
    for (size_t i = 0; i < filled.synced_chunks; ++i) {
      INFO("chunk " << i);
      CHECK(big.compare(i << 20, 1 << 20, chunk(i)) == 0);
    }
  }

  // The node's own files on the volume (the broker's registry lives in
  // STATE_DIR beside the stores) still have room: the reserve.
  write_file(vol.dir + "/registry-commit", std::string(1 << 20, 'r'));
  CHECK(read_file(vol.dir + "/registry-commit").size() == (1u << 20));

  // The other disk goes on: reads, stats, namespace changes.
  CHECK(read_file(other.path("kept")) == "other user's file");
  REQUIRE_OK(::mkdir(other.path("d").c_str(), 0755));
  REQUIRE_OK(::rmdir(other.path("d").c_str()));

  // On the full volume: a retention change, then rm and one gc.
  expect_ok(roamctl({"retention", fx.mnt(), "--space", "20M"}));
  REQUIRE_OK(::unlink(fx.path("big").c_str()));
  expect_ok(roamctl({"gc", fx.mnt()}));
  INFO("free after rm and gc: " << vol.avail());
  CHECK(vol.avail() >= (32u << 20));  // half the volume; the two stores keep ~20 MiB allocated

  // Writes work again, on both disks.
  const FillResult again = fill(fx.path("again"), 16);
  INFO("after gc: " << std::strerror(again.error) << " from " << again.where);
  CHECK(again.error == 0);
  CHECK(read_file(fx.path("again")).compare(0, 1 << 20, chunk(0)) == 0);
  write_file(other.path("new"), "written after");
  CHECK(read_file(other.path("new")) == "written after");

  fx.unmount();
  other.unmount();
  expect_ok(roamctl({"scrub", fx.store()}));
}
