// The per-disk quota on live data (store.h: WriteTxn::put_inode, commit;
// fs.h: write, statfs): the live-data counter follows every change, growing
// past the quota is EDQUOT, shrinking and restoring never are.
#include <linux/falloc.h>
#include <sys/stat.h>

#include <chrono>
#include <future>
#include <thread>

#include <catch2/catch.hpp>

#include "fusefs/history/restore.h"
#include "fusefs/store/volume.h"
#include "tests/unit/engine_env.h"

using namespace roam;
using roam::testing::EngineEnv;
using roam::testing::kTestCaller;
using roam::testing::must;

namespace {

constexpr uint64_t kMiB = 1 << 20;

struct Env : EngineEnv {
  uint64_t live() {
    ReadTxn txn = must(store->begin_read());
    return must(txn.live_bytes());
  }
  void set_quota(uint64_t bytes) {
    WriteTxn txn = must(store->begin_write());
    REQUIRE_OK(txn.set_quota(bytes));
    REQUIRE_OK(txn.commit());
  }
  Inode file(const std::string& name) {
    return must(fs->mknod(kTestCaller, kRootIno, name, S_IFREG | 0644, 0, OpKind::kCreate));
  }
  Status write(uint64_t ino, uint64_t offset, size_t n) {
    return fs->write(kTestCaller, ino, offset, std::string(n, 'q')).take_status();
  }
  Status truncate(uint64_t ino, uint64_t size) {
    SetattrArgs a;
    a.mask = kSetSize;
    a.size = size;
    return fs->setattr(kTestCaller, ino, a).take_status();
  }
};

}  // namespace

TEST_CASE("the live-data counter follows writes, truncates, links, unlinks and renames", "[quota]") {
  Env e;
  CHECK(e.live() == 0);
  Inode a = e.file("a");
  REQUIRE_OK(e.write(a.ino, 0, 3 * kMiB));
  CHECK(e.live() == 3 * kMiB);
  REQUIRE_OK(e.write(a.ino, kMiB, kMiB));  // an overwrite adds nothing
  CHECK(e.live() == 3 * kMiB);
  REQUIRE_OK(e.truncate(a.ino, 5 * kMiB));  // apparent size, as du and st_blocks count it
  CHECK(e.live() == 5 * kMiB);
  must(e.fs->link(kTestCaller, a.ino, kRootIno, "a2"));  // one file, counted once
  CHECK(e.live() == 5 * kMiB);
  Inode b = e.file("b");
  REQUIRE_OK(e.write(b.ino, 0, kMiB));
  CHECK(e.live() == 6 * kMiB);
  REQUIRE_OK(e.fs->rename(kTestCaller, kRootIno, "b", kRootIno, "a2", 0));  // a loses a name, b replaces it
  CHECK(e.live() == 6 * kMiB);
  REQUIRE_OK(e.fs->unlink(kTestCaller, kRootIno, "a"));  // a's last name
  CHECK(e.live() == kMiB);
  must(e.fs->symlink(kTestCaller, kRootIno, "s", "a-long-target"));  // not data
  CHECK(e.live() == kMiB);
  e.check();  // the check recounts it
  // Kept across a crash (the WAL) and a clean close (the checkpoint).
  e.reopen(false);
  CHECK(e.live() == kMiB);
  e.check();
}

TEST_CASE("growing past the quota is EDQUOT; deletes, shrinking and restores never are", "[quota]") {
  Env e;
  Inode a = e.file("a");
  REQUIRE_OK(e.write(a.ino, 0, 3 * kMiB));
  const uint64_t before_quota = e.last_seq();
  e.set_quota(4 * kMiB);

  CHECK(e.write(a.ino, 3 * kMiB, 2 * kMiB).err() == EDQUOT);  // 5 MiB > 4 MiB
  CHECK(e.truncate(a.ino, 8 * kMiB).err() == EDQUOT);
  CHECK(e.fs->fallocate(kTestCaller, a.ino, 0, 0, 6 * kMiB).err() == EDQUOT);
  Inode b = e.file("b");  // an empty file is no data
  CHECK(e.write(b.ino, 0, 2 * kMiB).err() == EDQUOT);
  CHECK(e.live() == 3 * kMiB);  // nothing of the refused changes
  REQUIRE_OK(e.write(b.ino, 0, kMiB));  // up to the quota exactly
  CHECK(e.live() == 4 * kMiB);
  REQUIRE_OK(e.write(a.ino, 0, kMiB));  // overwrites are not growth
  CHECK(e.fs->fallocate(kTestCaller, a.ino, FALLOC_FL_KEEP_SIZE, 0, 8 * kMiB).is_ok());  // nor is keep-size

  REQUIRE_OK(e.truncate(a.ino, kMiB));
  CHECK(e.live() == 2 * kMiB);
  REQUIRE_OK(e.fs->unlink(kTestCaller, kRootIno, "a"));
  CHECK(e.live() == kMiB);

  // A lower quota than the data: growth is refused, the rest goes on.
  e.set_quota(kMiB / 2);
  CHECK(e.write(b.ino, kMiB, 1).err() == EDQUOT);
  REQUIRE_OK(e.truncate(b.ino, kMiB / 4));
  // A restore brings back what the user had, over the quota.
  auto res = roam::restore(*e.store, kTestCaller, {"/", before_quota, std::nullopt, false, "t"});
  REQUIRE(res.is_ok());
  CHECK(e.live() == 3 * kMiB);
  e.check();
}

TEST_CASE("statfs shows the quota as the size and live data as used", "[quota]") {
  Env e;
  Inode a = e.file("a");
  REQUIRE_OK(e.write(a.ino, 0, 3 * kMiB));
  struct statvfs plain = must(e.fs->statfs());
  e.set_quota(10 * kMiB);
  struct statvfs q = must(e.fs->statfs());
  REQUIRE(q.f_frsize > 0);
  CHECK(q.f_blocks * q.f_frsize == 10 * kMiB);
  CHECK((q.f_blocks - q.f_bfree) * q.f_frsize == 3 * kMiB);
  CHECK(q.f_bavail * q.f_frsize == 7 * kMiB);
  CHECK(plain.f_blocks * plain.f_frsize != 10 * kMiB);
  e.set_quota(0);
  CHECK(must(e.fs->statfs()).f_blocks == plain.f_blocks);
}

TEST_CASE("statfs answers while another thread holds the writer lock", "[quota]") {
  Env e;
  Inode a = e.file("a");
  REQUIRE_OK(e.write(a.ino, 0, 2 * kMiB));
  e.set_quota(10 * kMiB);
  // As a restore of thousands of files does, for seconds.
  std::promise<void> holding, release;
  std::thread writer([&] {
    WriteTxn txn = must(e.store->begin_write());
    holding.set_value();
    release.get_future().wait();
  });
  holding.get_future().wait();
  auto statfs = std::async(std::launch::async, [&] { return e.fs->statfs(); });
  const bool answered = statfs.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  release.set_value();
  writer.join();
  REQUIRE(answered);
  struct statvfs st = must(statfs.get());
  CHECK((st.f_blocks - st.f_bfree) * st.f_frsize == 2 * kMiB);
}

TEST_CASE("a store made before the counter is counted at its first writable open", "[quota]") {
  Env e;
  Inode a = e.file("a");
  REQUIRE_OK(e.write(a.ino, 0, 2 * kMiB));
  {
    WriteTxn txn = must(e.store->begin_write());
    REQUIRE(must(txn.del(txn.dbis().meta, kMetaLiveBytes)));
    REQUIRE_OK(txn.commit());
  }
  e.reopen(false);
  CHECK(e.live() == 2 * kMiB);
  e.check();
}

TEST_CASE("the store keeps the quota in memory for the writes' pre-check", "[quota]") {
  Env e;
  CHECK(e.store->quota_bytes() == 0);
  e.set_quota(8 * kMiB);
  CHECK(e.store->quota_bytes() == 8 * kMiB);
  {
    WriteTxn aborted = must(e.store->begin_write());
    REQUIRE_OK(aborted.set_quota(1));
  }  // never committed
  CHECK(e.store->quota_bytes() == 8 * kMiB);
  e.reopen(false);
  CHECK(e.store->quota_bytes() == 8 * kMiB);
  e.reopen(true);
  CHECK(e.store->quota_bytes() == 8 * kMiB);
}

namespace {

// A volume whose free space the test sets, counting how often it is looked at.
struct FakeVolume {
  VolumeSpace space{1024 * kMiB, 512 * kMiB};  // reserve: 32 MiB
  int looks = 0;
  VolumeWatch::Look look() {
    return [this](const std::string&) -> Result<VolumeSpace> {
      ++looks;
      return space;
    };
  }
};

}  // namespace

TEST_CASE("the volume watch looks at the volume only when its last look could be wrong", "[quota]") {
  FakeVolume v;
  VolumeWatch watch("/store", v.look());
  CHECK(must(watch.admit(kMiB)));
  CHECK(v.looks == 1);
  for (int i = 0; i < 100; ++i) CHECK(must(watch.admit(kMiB)));
  CHECK(v.looks == 1);  // 101 MiB of 480 MiB of headroom

  SECTION("admitted bytes past half the headroom it saw make it look again") {
    v.space.avail = 40 * kMiB;  // someone else filled the volume
    CHECK(must(watch.admit(200 * kMiB)) == false);
    CHECK(v.looks == 2);
    CHECK(must(watch.admit(4 * kMiB)));  // 4 of 8 MiB of headroom: no look
    CHECK(v.looks == 2);
    CHECK(must(watch.admit(kMiB)) == true);
    CHECK(v.looks == 3);  // 5 MiB > half the headroom
  }
  SECTION("a refusal is always from a fresh look") {
    v.space.avail = 33 * kMiB;
    CHECK(must(watch.admit(300 * kMiB)) == false);
    CHECK(must(watch.admit(300 * kMiB)) == false);
    CHECK(v.looks == 3);
  }
  SECTION("an old look is not trusted") {
    std::this_thread::sleep_for(VolumeWatch::kMaxAge + std::chrono::milliseconds(20));
    CHECK(must(watch.admit(kMiB)));
    CHECK(v.looks == 2);
  }
  SECTION("look_now looks, as after GC freed space") {
    CHECK(must(watch.admit(kMiB, /*look_now=*/true)));
    CHECK(v.looks == 2);
  }
}
