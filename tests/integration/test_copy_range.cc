// copy_file_range through the mount (fusefs/engine/fs_copy.cc): `cp` of a
// file within the disk shares its blobs, so the store does not grow by the
// file's size; the copy is one logged operation; afterwards each side
// changes alone, through the page cache as through the store, and a
// remount reads the same bytes.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <random>
#include <string>

#include "posix_helpers.h"

using namespace roamtest;

namespace {

constexpr size_t kFileBytes = 32u << 20;

// Bytes in the store's segment files: where file data goes.
uint64_t segment_bytes(const std::string& store) {
  uint64_t total = 0;
  const std::string dir = store + "/segments";
  DIR* d = ::opendir(dir.c_str());
  REQUIRE(d != nullptr);
  while (dirent* e = ::readdir(d)) {
    struct stat st {};
    if (e->d_name[0] != '.' && ::stat((dir + "/" + e->d_name).c_str(), &st) == 0) total += st.st_size;
  }
  ::closedir(d);
  return total;
}

void pwrite_all(const std::string& path, const std::string& data, off_t off) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::pwrite(fd, data.data(), data.size(), off) == static_cast<ssize_t>(data.size()));
  REQUIRE(::close(fd) == 0);
}

// "" when the file holds `want`, else where it first differs (never the
// whole contents: a failure message of 32 MiB helps nobody).
std::string differs(const std::string& path, const std::string& want) {
  const std::string got = read_file(path);
  if (got == want) return "";
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  return path + ": " + std::to_string(got.size()) + " bytes (want " + std::to_string(want.size()) +
         "), first difference at offset " + std::to_string(i);
}

}  // namespace

TEST_CASE("cp within the disk shares blobs: no data written, one copy record, each side then changes alone",
          "[integration]") {
  MountFixture fx;
  std::mt19937_64 rng(7);
  const std::string original = random_bytes(rng, kFileBytes);
  write_synced(fx.path("big"), original);
  sync_mount(fx.mnt());
  const uint64_t before = segment_bytes(fx.store());

  ProcResult cp = run({"cp", fx.path("big"), fx.path("copy")});
  INFO(cp.describe());
  REQUIRE(cp.exit_code() == 0);
  sync_mount(fx.mnt());
  CHECK(differs(fx.path("copy"), original) == "");
  // A sync may write up to 1 MiB of zeros ahead of the segment's tail
  // (kSegmentReserve); the copied 32 MiB must not be there.
  CHECK(segment_bytes(fx.store()) < before + (2u << 20));

  auto log = read_log(fx.store(), {"--op", "copy"});
  INFO(render(log));
  REQUIRE(log.size() == 1);
  CHECK(log[0].get("path") == "/copy");
  CHECK(log[0].get("comm") == "cp");
  CHECK(log[0].get("details").find("from /big offset 0: " + std::to_string(kFileBytes) + " bytes") == 0);

  // Through the page cache: what one side writes, the other never sees.
  std::string big = original, copy = original;
  pwrite_all(fx.path("big"), "written to big", 1000);
  big.replace(1000, 14, "written to big");
  pwrite_all(fx.path("copy"), "written to the copy", 5u << 20);
  copy.replace(5u << 20, 19, "written to the copy");
  CHECK(differs(fx.path("big"), big) == "");
  CHECK(differs(fx.path("copy"), copy) == "");

  // A copy over cached pages of the destination at offsets that are not
  // blob-aligned: the kernel must not serve its stale pages afterwards.
  CHECK(read_file(fx.path("copy")).size() == kFileBytes);  // caches the destination's pages
  int in = ::open(fx.path("big").c_str(), O_RDONLY | O_CLOEXEC);
  int out = ::open(fx.path("copy").c_str(), O_WRONLY | O_CLOEXEC);
  REQUIRE(in >= 0);
  REQUIRE(out >= 0);
  loff_t off_in = 999, off_out = 4097;
  REQUIRE(::copy_file_range(in, &off_in, out, &off_out, 300000, 0) == 300000);
  ::close(in);
  ::close(out);
  copy.replace(4097, 300000, big.substr(999, 300000));
  CHECK(differs(fx.path("copy"), copy) == "");

  fx.remount();
  CHECK(differs(fx.path("big"), big) == "");
  CHECK(differs(fx.path("copy"), copy) == "");
  ProcResult scrub = roamctl({"scrub", fx.store()});
  INFO(scrub.describe());
  CHECK(scrub.exit_code() == 0);
}
