// base/backing_fs.h and the mountinfo parsing under it: on which
// filesystems a store survives a power loss.
#include "base/backing_fs.h"

#include <catch2/catch.hpp>

#include "base/sys/mountinfo.h"
#include "tests/unit/helpers.h"

using namespace roam;

TEST_CASE("local disk filesystems are safe in every ext4 data mode", "[backing_fs]") {
  for (const char* options : {"rw,discard,resv_strict", "rw,data=journal", "rw,data=writeback"}) {
    INFO(options);
    CHECK(classify_backing_fs("ext4", options).power_loss == PowerLoss::kSafe);
  }
  const BackingFs ordered = classify_backing_fs("ext4", "rw,discard,resv_strict");  // ordered: the default
  CHECK(describe(ordered) == "ext4 (data=ordered)");
  // An option that merely ends in "data=journal" is not the data mode.
  CHECK(describe(classify_backing_fs("ext4", "rw,journal_data=journal")) == "ext4 (data=ordered)");
  for (const char* fs : {"ext3", "xfs", "btrfs", "zfs", "f2fs"}) {
    INFO(fs);
    CHECK(classify_backing_fs(fs, "rw").power_loss == PowerLoss::kSafe);
  }
  CHECK(describe(classify_backing_fs("xfs", "rw,attr2")) == "xfs");
}

TEST_CASE("tmpfs is volatile; network, FUSE and unknown filesystems are unverified", "[backing_fs]") {
  CHECK(classify_backing_fs("tmpfs", "rw,size=20m").power_loss == PowerLoss::kVolatile);
  CHECK(classify_backing_fs("ramfs", "rw").power_loss == PowerLoss::kVolatile);
  for (const char* fs : {"ext2", "nfs4", "cifs", "overlay", "fuse.sshfs", "unknown"}) {
    INFO(fs);
    CHECK(classify_backing_fs(fs, "rw").power_loss == PowerLoss::kUnverified);
  }
}

TEST_CASE("the warning says what can happen and what to do, only when needed", "[backing_fs]") {
  CHECK(power_loss_warning("/srv/s", classify_backing_fs("ext4", "rw")).empty());
  CHECK(power_loss_warning("/srv/s", classify_backing_fs("xfs", "rw")).empty());
  const std::string w = power_loss_warning("/srv/s", classify_backing_fs("nfs4", "rw"));
  CHECK(w.find("/srv/s is on nfs4") != std::string::npos);
  CHECK(w.find("fsync") != std::string::npos);
  CHECK(w.find("docs/crash-model.md") != std::string::npos);
  CHECK(power_loss_warning("/srv/s", classify_backing_fs("tmpfs", "rw")).find("lost when the machine restarts") !=
        std::string::npos);
}

TEST_CASE("mountinfo lines give the device, type and the filesystem's own options", "[backing_fs]") {
  auto m = parse_mountinfo_line(
      "42 27 7:0 / /tmp/ext4\\040mnt rw,relatime shared:1 - ext4 /dev/loop0 rw,nodioread_nolock,data=journal");
  REQUIRE(m);
  CHECK(m->device == "7:0");
  CHECK(m->mount_point == "/tmp/ext4 mnt");
  CHECK(m->fstype == "ext4");
  CHECK(m->source == "/dev/loop0");
  CHECK(m->super_options == "rw,nodioread_nolock,data=journal");
  CHECK_FALSE(parse_mountinfo_line("garbage"));
  CHECK_FALSE(parse_mountinfo_line("42 27 7:0 / /x rw no-separator-here"));
}

TEST_CASE("the mount holding a directory is found on this machine", "[backing_fs]") {
  roam::testing::TempDir t;
  auto m = mount_holding(t.path());
  REQUIRE(m);
  CHECK(t.path().rfind(m->mount_point == "/" ? "/" : m->mount_point + "/", 0) == 0);
  CHECK(backing_fs_of(t.path()).fstype == m->fstype);
  CHECK_FALSE(mount_holding(t.sub("does-not-exist")));
}
