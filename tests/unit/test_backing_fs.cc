// base/backing_fs.h and the mountinfo parsing under it: which
// filesystems keep write order across a power loss.
#include "base/backing_fs.h"

#include <catch2/catch.hpp>

#include "base/sys/mountinfo.h"
#include "tests/unit/helpers.h"

using namespace roam;

TEST_CASE("ext4 keeps write order only with data=journal", "[backing_fs]") {
  CHECK(classify_backing_fs("ext4", "rw,nodioread_nolock,nodelalloc,data=journal").order == WriteOrder::kKept);
  CHECK(classify_backing_fs("ext3", "rw,data=journal").order == WriteOrder::kKept);
  const BackingFs ordered = classify_backing_fs("ext4", "rw,discard,resv_strict");  // ordered: the default
  CHECK(ordered.order == WriteOrder::kNotKept);
  CHECK(describe(ordered) == "ext4 (data=ordered)");
  CHECK(classify_backing_fs("ext4", "rw,data=writeback").order == WriteOrder::kNotKept);
  // An option that merely ends in "data=journal" is not it.
  CHECK(classify_backing_fs("ext4", "rw,journal_data=journal").order == WriteOrder::kNotKept);
}

TEST_CASE("ZFS keeps write order; tmpfs is volatile; the rest do not", "[backing_fs]") {
  CHECK(classify_backing_fs("zfs", "rw,xattr,noacl").order == WriteOrder::kKept);
  CHECK(classify_backing_fs("tmpfs", "rw,size=20m").order == WriteOrder::kVolatile);
  for (const char* fs : {"xfs", "btrfs", "ext2", "f2fs", "nfs4", "overlay", "fuse.sshfs"}) {
    INFO(fs);
    CHECK(classify_backing_fs(fs, "rw").order == WriteOrder::kNotKept);
  }
}

TEST_CASE("the warning says what can happen and what to do, only when needed", "[backing_fs]") {
  CHECK(power_loss_warning("/srv/s", classify_backing_fs("ext4", "rw,data=journal")).empty());
  const std::string w = power_loss_warning("/srv/s", classify_backing_fs("xfs", "rw"));
  CHECK(w.find("/srv/s is on xfs") != std::string::npos);
  CHECK(w.find("data=journal") != std::string::npos);
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
