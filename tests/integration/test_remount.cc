// `mount -o remount,ro` and `remount,rw` of a roamfs mount change the flags
// of the mount that is there, through mount(8)'s helper for fuse.roamfs
// (tools/scripts/mount.fuse.roamfs; MOUNT_HELPER), which must not start a
// second roamfs on the busy mount point; the one roamfs serves on.
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "posix_helpers.h"

using namespace roamtest;

namespace {

// The helper as mount(8) runs it: SOURCE MOUNTPOINT -o OPTIONS.
void helper(const MountFixture& fx, const std::string& options) {
  const char* bin = std::getenv("MOUNT_HELPER");
  REQUIRE(bin != nullptr);
  ProcResult r = run({bin, "roamfs:" + fx.store(), fx.mnt(), "-o", options});
  INFO(r.describe());
  REQUIRE(r.exit_code() == 0);
}

bool read_only(const std::string& mnt) {
  struct statvfs st {};
  REQUIRE(::statvfs(mnt.c_str(), &st) == 0);
  return st.f_flag & ST_RDONLY;
}

}  // namespace

TEST_CASE("remount,ro and remount,rw change the flags of the roamfs that is mounted", "[integration]") {
  MountFixture fx;
  write_file(fx.path("before"), "written rw");

  helper(fx, "remount,ro");
  CHECK(read_only(fx.mnt()));
  CHECK(read_file(fx.path("before")) == "written rw");
  REQUIRE_ERRNO(::open(fx.path("new").c_str(), O_WRONLY | O_CREAT, 0644), EROFS);
  REQUIRE_ERRNO(::unlink(fx.path("before").c_str()), EROFS);

  helper(fx, "remount,rw");
  CHECK_FALSE(read_only(fx.mnt()));
  write_file(fx.path("after"), "written rw again");

  // The same roamfs served all along, and stored both files.
  fx.remount();
  CHECK(read_file(fx.path("before")) == "written rw");
  CHECK(read_file(fx.path("after")) == "written rw again");
}
