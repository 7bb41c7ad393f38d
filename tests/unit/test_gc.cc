// fusefs/gc: retention, freeing and compaction, driven through the engine.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstdio>

#include "fusefs/engine/check.h"
#include "fusefs/engine/fs.h"
#include "fusefs/gc/gc.h"
#include "fusefs/history/moment.h"
#include "fusefs/history/restore.h"
#include "fusefs/oplog/oplog.h"
#include "base/timefmt.h"
#include "tests/unit/engine_env.h"

using namespace roam;
using roam::testing::must;
using roam::testing::TempDir;

namespace {

const Caller kCaller{1000, 1000, 4242, "tester"};
constexpr int64_t kHour = 3600LL * 1000000000LL;

struct Env : roam::testing::EngineEnv {
  void set_retention(Retention r) {
    WriteTxn txn = must(store->begin_write());
    REQUIRE_OK(save_retention(txn, r));
    REQUIRE_OK(txn.commit());
  }
  GcReport gc(int64_t now_ns) {
    GcOptions o;
    o.now_ns = now_ns;
    o.batch = 7;  // small batches: many transactions, as when the disk is busy
    return must(collect_garbage(*store, o));
  }
  std::optional<std::pair<uint64_t, uint64_t>> bounds() {
    ReadTxn txn = must(store->begin_read());
    return must(oplog::seq_bounds(txn));
  }
};

Inode make_file(Env& e, const std::string& name, size_t mib, char fill) {
  Inode f = must(e.fs->mknod(kCaller, kRootIno, name, S_IFREG | 0644, 0, OpKind::kCreate));
  const std::string chunk(1 << 20, fill);
  for (size_t i = 0; i < mib; ++i) must(e.fs->write(kCaller, f.ino, i << 20, chunk));
  return f;
}

}  // namespace

TEST_CASE("history inside retention is kept; GC frees nothing a retained record needs", "[gc]") {
  Env e;
  Inode f = make_file(e, "f", 4, 'a');
  must(e.fs->write(kCaller, f.ino, 0, std::string(1 << 20, 'b')));
  const uint64_t records = e.bounds()->second;
  REQUIRE_OK(e.store->sync());  // writes the segment reserve now, not during GC's sync
  const uint64_t before = e.segment_bytes();
  GcReport r = e.gc(wall_clock_ns());  // default retention: 30 days
  CHECK(r.records_dropped == 0);
  CHECK(r.blobs_freed == 0);
  CHECK(e.bounds()->second == records);
  CHECK(e.segment_bytes() == before);
  e.check();
}

TEST_CASE("expired history and removed files are freed, and the segments shrink", "[gc]") {
  Env e;
  Inode big = make_file(e, "big", 12, 'x');
  make_file(e, "keep", 2, 'k');
  REQUIRE_OK(e.fs->unlink(kCaller, kRootIno, "big"));
  must(e.fs->mkdir(kCaller, kRootIno, "later", 0755));  // the newest record, which GC always keeps
  const uint64_t before = e.segment_bytes();
  REQUIRE(before >= (14u << 20));
  GcReport r = e.gc(wall_clock_ns() + 31 * 24 * kHour);  // everything is older than 30 days
  CHECK(r.records_dropped > 0);
  CHECK(r.inodes_freed == 1);
  CHECK(r.bytes_freed >= (12u << 20));
  CHECK(r.segments_removed >= 1);
  INFO("segments before " << before << " after " << e.segment_bytes());
  CHECK(e.segment_bytes() <= before - (12u << 20) + (1u << 20));
  CHECK(e.bounds()->first == e.bounds()->second);  // only the newest record is kept
  ReadTxn txn = must(e.store->begin_read());
  CHECK_FALSE(must(txn.get_inode(big.ino)).has_value());
  e.check();
  // The surviving file reads back intact after its blobs moved.
  const Inode keep = must(e.fs->lookup(kRootIno, "keep"));
  std::string got(1 << 20, '\0');
  REQUIRE(must(e.fs->read(keep.ino, 1 << 20, got.size(), got.data())) == got.size());
  CHECK(got == std::string(1 << 20, 'k'));
}

TEST_CASE("a restore inside retention stays exact after GC; older moments are refused", "[gc]") {
  Env e;
  Inode f = make_file(e, "f", 1, 'a');
  const uint64_t old_seq = e.bounds()->second;
  must(e.fs->write(kCaller, f.ino, 0, std::string(1 << 20, 'b')));
  const uint64_t mid_seq = e.bounds()->second;
  // Make the first records "old": retention by space drops oldest first.
  e.set_retention({0, 1});  // keep forever by age, but at most 1 byte of history
  must(e.fs->write(kCaller, f.ino, 0, std::string(1 << 20, 'c')));
  GcReport r = e.gc(wall_clock_ns());
  CHECK(r.records_dropped > 0);
  e.check();
  ReadTxn txn = must(e.store->begin_read());
  CHECK_ERR(moment_before_op(txn, old_seq), ENOENT);  // dropped: a clear error, not a wrong restore
  const auto bounds = *e.bounds();
  // Whatever is still restorable restores exactly.
  for (uint64_t seq = bounds.first; seq <= bounds.second; ++seq) {
    (void)mid_seq;
    auto res = roam::restore(*e.store, kCaller, {"/f", seq - 1, std::nullopt, true, "t"});
    if (res) continue;
    CHECK(res.status().err() == ENOENT);  // the file did not exist at that moment
  }
}

TEST_CASE("a removed file is kept while a retained record names it, freed once none does", "[gc]") {
  Env e;
  Inode f = make_file(e, "f", 1, 'a');
  REQUIRE_OK(e.fs->unlink(kCaller, kRootIno, "f"));
  // GC keeps the highest blob's number even when freed, and compaction then
  // drops its data, which scrub reports as damage: keep the highest live.
  make_file(e, "k", 1, 'k');
  must(e.fs->mkdir(kCaller, kRootIno, "later", 0755));
  {
    ReadTxn txn = must(e.store->begin_read());
    REQUIRE(must(oplog::has_records(txn, f.ino)));
  }
  GcReport kept = e.gc(wall_clock_ns());  // inside retention
  CHECK(kept.inodes_freed == 0);
  {
    ReadTxn txn = must(e.store->begin_read());
    CHECK(must(txn.get_inode(f.ino)).has_value());
  }
  e.check();
  GcReport freed = e.gc(wall_clock_ns() + 31 * 24 * kHour);
  CHECK(freed.inodes_freed == 1);
  ReadTxn txn = must(e.store->begin_read());
  CHECK_FALSE(must(oplog::has_records(txn, f.ino)));  // its records' index values went with them
  CHECK_FALSE(must(txn.get_inode(f.ino)).has_value());
  e.check();  // includes: the index holds exactly the retained records' values
}

TEST_CASE("GC on a store upgraded from format 1", "[gc][upgrade]") {
  Env e;
  make_file(e, "big", 3, 'x');
  make_file(e, "keep", 1, 'k');
  REQUIRE_OK(e.fs->unlink(kCaller, kRootIno, "big"));
  must(e.fs->mkdir(kCaller, kRootIno, "later", 0755));
  e.reopen(false, true);
  e.check();
  GcReport r = e.gc(wall_clock_ns() + 31 * 24 * kHour);
  CHECK(r.records_dropped > 0);
  CHECK(r.inodes_freed == 1);
  CHECK(e.bounds()->first == e.bounds()->second);
  e.check();
}

TEST_CASE("retention forms", "[gc]") {
  CHECK(must(parse_age("30d")) == 30 * 24 * kHour);
  CHECK(must(parse_age("90m")) == 90LL * 60 * 1000000000LL);
  CHECK(must(parse_age("0")) == 0);
  CHECK_ERR(parse_age("soon"), EINVAL);
  CHECK(must(parse_bytes("20G")) == 20ull << 30);
  CHECK(must(parse_bytes("512M")) == 512ull << 20);
  CHECK_ERR(parse_bytes("-1G"), EINVAL);
  CHECK(format_age(30 * 24 * kHour) == "30d");
  CHECK(format_bytes(1536ull << 20) == "1.5 GiB");
}

TEST_CASE("the highest blob, kept only for its number, is not damaged data once its segment goes", "[gc]") {
  // GC keeps the row of the highest blob even when nothing uses it (the next
  // blob number derives from it); compaction may remove its segment. scrub
  // must not call that damage: no file and no record needs those bytes.
  Env e;
  make_file(e, "f", 2, 'f');  // the newest blobs are this file's
  REQUIRE_OK(e.fs->unlink(kCaller, kRootIno, "f"));
  must(e.fs->mkdir(kCaller, kRootIno, "later", 0755));
  GcReport r = e.gc(wall_clock_ns() + 31 * 24 * kHour);
  CHECK(r.segments_removed >= 1);
  e.check();  // verifies data
  // And the numbering goes on past the kept row.
  Inode g = make_file(e, "g", 1, 'g');
  std::string got(1 << 20, '\0');
  REQUIRE(must(e.fs->read(g.ino, 0, got.size(), got.data())) == got.size());
  CHECK(got == std::string(1 << 20, 'g'));
  e.check();
}

namespace {

// GC as roamfs runs it when the storage volume is under space pressure
// (`mark`: the free space it wants, far above what any volume has free).
GcReport gc_under_pressure(Env& e, int64_t now_ns, uint64_t mark = UINT64_MAX / 2) {
  GcOptions o;
  o.now_ns = now_ns;
  o.batch = 7;
  o.pressure_mark = mark;
  return must(collect_garbage(*e.store, o));
}

}  // namespace

TEST_CASE("space pressure: history gives way oldest first, the newest record and the last file's data too", "[gc]") {
  Env e;
  const int64_t start = wall_clock_ns();
  make_file(e, "keep", 1, 'k');
  make_file(e, "big", 8, 'x');  // the highest inode
  REQUIRE_OK(e.fs->unlink(kCaller, kRootIno, "big"));  // the newest record
  const uint64_t last = e.bounds()->second;
  const uint64_t before = e.segment_bytes();
  GcReport r = gc_under_pressure(e, wall_clock_ns() + 1);  // 30-day retention: only pressure drops anything
  CHECK(r.pressure_wanted > 0);
  CHECK(r.records_dropped == last);
  CHECK(r.pressure_dropped == last);
  CHECK(!e.bounds());  // the log is empty
  CHECK(r.bytes_freed >= (8u << 20));
  INFO("segments before " << before << " after " << e.segment_bytes());
  CHECK(e.segment_bytes() + (7u << 20) <= before);
  {
    std::string keep(1 << 20, '\0');
    CHECK(must(e.fs->read(must(e.fs->lookup(kRootIno, "keep")).ino, 0, keep.size(), keep.data())) == keep.size());
    CHECK(keep == std::string(1 << 20, 'k'));
  }
  e.check();

  // The next record continues the seqs; the time before it is no longer kept.
  must(e.fs->mkdir(kCaller, kRootIno, "after", 0755));
  CHECK(e.bounds()->first == last + 1);
  {
    ReadTxn txn = must(e.store->begin_read());
    auto trim = must(load_pressure_trim(txn));
    REQUIRE(trim);
    CHECK(trim->kept_from_ns == 0);
    CHECK(moment_of(txn, start, std::nullopt, wall_clock_ns()).status().err() == ERANGE);
  }
  // And it survives a reopen.
  e.reopen(false);
  must(e.fs->mkdir(kCaller, kRootIno, "after2", 0755));
  CHECK(e.bounds()->second == last + 2);
  e.check();
}

TEST_CASE("space pressure keeps the minimum window, and drops nothing when the volume has room", "[gc]") {
  Env e;
  Retention r;
  r.min_window_ns = 24 * kHour;
  e.set_retention(r);
  make_file(e, "big", 4, 'x');
  REQUIRE_OK(e.fs->unlink(kCaller, kRootIno, "big"));
  const auto bounds = e.bounds();
  GcReport pressed = gc_under_pressure(e, wall_clock_ns() + kHour);  // everything is inside the window
  CHECK(pressed.pressure_wanted > 0);
  CHECK(pressed.records_dropped == 0);
  CHECK(e.bounds() == bounds);
  GcReport roomy = gc_under_pressure(e, wall_clock_ns() + 48 * kHour, 0);  // no pressure: a mark of 0 free
  CHECK(roomy.pressure_wanted == 0);
  CHECK(roomy.records_dropped == 0);
  GcReport older = gc_under_pressure(e, wall_clock_ns() + 48 * kHour);  // out of the window now
  CHECK(older.records_dropped == bounds->second);
  e.check();
}
