// Garbage collection on a mounted disk: a deleted file whose history has aged
// out is really freed (the store shrinks by about its size), the files that
// remain read back intact, history inside retention stays restorable, and a
// file that is still open is never freed.
// Knob: ROAM_GC_MIB (default 1024), the size of the deleted file.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include "posix_helpers.h"

using namespace roamtest;

namespace {

uint64_t segment_bytes(const std::string& store) {
  uint64_t total = 0;
  DIR* d = ::opendir((store + "/segments").c_str());
  REQUIRE(d != nullptr);
  while (dirent* e = ::readdir(d)) {
    struct stat st {};
    if (e->d_name[0] != '.' && ::stat((store + "/segments/" + e->d_name).c_str(), &st) == 0)
      total += static_cast<uint64_t>(st.st_size);
  }
  ::closedir(d);
  return total;
}

void write_mib(const std::string& path, uint64_t mib) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  std::string chunk(1 << 20, '\0');
  for (uint64_t i = 0; i < mib; ++i) {
    for (size_t j = 0; j < chunk.size(); j += 4096) chunk[j] = static_cast<char>(i + j);  // not all one blob
    REQUIRE(::write(fd, chunk.data(), chunk.size()) == static_cast<ssize_t>(chunk.size()));
  }
  REQUIRE(::fsync(fd) == 0);
  REQUIRE(::close(fd) == 0);
}

void roamctl_ok(const std::vector<std::string>& args) {
  const ProcResult r = roamctl(args);
  INFO(r.describe());
  REQUIRE(r.exit_code() == 0);
}

}  // namespace

TEST_CASE("a deleted file's space comes back once its history ages out", "[gc]") {
  const uint64_t mib = env_u64("ROAM_GC_MIB", 1024);
  MountFixture fx;
  write_file(fx.path("keep.txt"), "still here");
  write_mib(fx.path("big"), mib);
  const uint64_t full = segment_bytes(fx.store());
  REQUIRE(full >= mib << 20);

  REQUIRE(::unlink(fx.path("big").c_str()) == 0);
  roamctl_ok({"gc", fx.mnt()});  // inside retention (30 days): nothing of it may go
  CHECK(segment_bytes(fx.store()) >= mib << 20);

  roamctl_ok({"retention", fx.mnt(), "--age", "1s"});
  ::usleep(1'500'000);
  write_file(fx.path("later.txt"), "after");  // the newest record, which GC keeps
  const ProcResult gc = roamctl({"gc", fx.mnt()});
  INFO(gc.describe());
  REQUIRE(gc.exit_code() == 0);
  const uint64_t after = segment_bytes(fx.store());
  INFO("segments: " << full << " bytes before, " << after << " after");
  CHECK(after <= full - (mib << 20) + (4u << 20));
  CHECK(read_file(fx.path("keep.txt")) == "still here");
  CHECK(read_file(fx.path("later.txt")) == "after");
  const ProcResult scrub = roamctl({"scrub", fx.mnt()});
  INFO(scrub.describe());
  CHECK(scrub.exit_code() == 0);
}

TEST_CASE("GC never frees a deleted file that is still open", "[gc]") {
  MountFixture fx;
  write_mib(fx.path("open"), 4);
  const int fd = ::open(fx.path("open").c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  REQUIRE(::unlink(fx.path("open").c_str()) == 0);
  roamctl_ok({"retention", fx.mnt(), "--age", "1s"});
  ::usleep(1'500'000);
  write_file(fx.path("later.txt"), "after");
  roamctl_ok({"gc", fx.mnt()});
  std::string buf(1 << 20, '\xff');
  CHECK(::pread(fd, buf.data(), buf.size(), 3 << 20) == static_cast<ssize_t>(buf.size()));
  CHECK(buf[4096] == static_cast<char>(3 + 4096));
  ::close(fd);
  const ProcResult scrub = roamctl({"scrub", fx.mnt()});
  INFO(scrub.describe());
  CHECK(scrub.exit_code() == 0);
}
