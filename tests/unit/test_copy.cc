// fusefs/engine/fs_copy.cc: copy_file_range within a disk shares the
// source's blobs; restore, past views, GC and the check treat shared blobs
// as any others.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <string>

#include "fusefs/gc/gc.h"
#include "fusefs/gc/retention.h"
#include "fusefs/history/restore.h"
#include "base/timefmt.h"
#include "tests/unit/engine_env.h"

using namespace roam;
using roam::testing::kTestCaller;
using roam::testing::must;

namespace {

constexpr uint64_t kKiB = 1024;

struct Env : roam::testing::EngineEnv {
  Inode create(std::string_view name) {
    return must(fs->mknod(kTestCaller, kRootIno, name, S_IFREG | 0644, 0, OpKind::kCreate));
  }
  void write(uint64_t ino, uint64_t off, const std::string& data) { must(fs->write(kTestCaller, ino, off, data)); }
  std::string read_all(uint64_t ino) {
    const uint64_t size = must(fs->getattr(ino)).size;
    std::string buf(size, '\xAA');  // holes must read as zeros
    REQUIRE(must(fs->read(ino, 0, size, buf.data())) == size);
    return buf;
  }
  uint64_t copy(uint64_t in, uint64_t off_in, uint64_t out, uint64_t off_out, uint64_t len) {
    return must(fs->copy_range(kTestCaller, {in, off_in, out, off_out, len}));
  }
  OpRecord last_record() {
    ReadTxn txn = must(store->begin_read());
    auto rec = must(oplog::get(txn, last_seq()));
    REQUIRE(rec);
    return *rec;
  }
  uint64_t blob_count() {
    ReadTxn txn = must(store->begin_read());
    uint64_t n = 0;
    REQUIRE_OK(txn.scan_table(txn.dbis().blobs, {}, [&](std::string_view, std::string_view) {
      ++n;
      return Status::ok();
    }));
    return n;
  }
};

// Bytes that differ at every offset, so a piece copied from the wrong place shows.
std::string pattern(size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed * 17 + i / 4096) & 0xff);
  return s;
}

// What copying `len` bytes at `off_in` of `src` to `off_out` of `dst` gives.
std::string model_copy(const std::string& src, uint64_t off_in, std::string dst, uint64_t off_out, uint64_t len) {
  const uint64_t n = off_in >= src.size() ? 0 : std::min<uint64_t>(len, src.size() - off_in);
  if (dst.size() < off_out + n) dst.resize(off_out + n, '\0');
  dst.replace(off_out, n, src.substr(off_in, n));
  return dst;
}

}  // namespace

TEST_CASE("a copy shares the source's blobs: the same bytes, no new data, one logged record", "[copy]") {
  Env e;
  Inode src = e.create("src");
  std::string model = pattern(300 * kKiB, 1);
  e.write(src.ino, 0, model);
  e.write(src.ino, 600 * kKiB, pattern(100 * kKiB, 2));  // a hole between
  model.resize(600 * kKiB, '\0');
  model += pattern(100 * kKiB, 2);
  Inode dst = e.create("dst");
  REQUIRE_OK(e.store->sync());
  const uint64_t segments = e.segment_bytes(), blobs = e.blob_count();
  const uint64_t live = e.store->live_bytes();

  CHECK(e.copy(src.ino, 0, dst.ino, 0, 1ull << 40) == model.size());  // cut at the source's end
  CHECK((e.read_all(dst.ino) == model));
  CHECK((e.read_all(src.ino) == model));
  REQUIRE_OK(e.store->sync());
  CHECK(e.segment_bytes() == segments);
  CHECK(e.blob_count() == blobs);
  CHECK(e.store->live_bytes() == live + model.size());  // the copy counts as live data, as any file

  OpRecord rec = e.last_record();
  CHECK(rec.kind == OpKind::kCopy);
  CHECK(rec.ino == dst.ino);
  CHECK(rec.path == "/dst");
  CHECK(rec.name == "/src");
  CHECK(rec.rdev == 0);
  CHECK(rec.offset == 0);
  CHECK(rec.length == model.size());
  CHECK(rec.size == model.size());
  CHECK(op_kind_name(rec.kind) == "copy");
  e.check();  // blob reference counts include the shared extents
}

TEST_CASE("copies at any offsets, past the source's end, within one file, and what is refused", "[copy]") {
  Env e;
  Inode src = e.create("src");
  const std::string s = pattern(500 * kKiB + 333, 3);
  e.write(src.ino, 0, s);
  Inode dst = e.create("dst");
  std::string d = pattern(200 * kKiB, 4);
  e.write(dst.ino, 0, d);

  SECTION("offsets that differ modulo the blob size, over existing data and past its end") {
    CHECK(e.copy(src.ino, 1000, dst.ino, 5, 250 * kKiB) == 250 * kKiB);
    d = model_copy(s, 1000, d, 5, 250 * kKiB);
    CHECK((e.read_all(dst.ino) == d));
    CHECK(e.copy(src.ino, 490 * kKiB, dst.ino, 700 * kKiB, 1 * kKiB << 20) == 10 * kKiB + 333);  // leaves a hole
    d = model_copy(s, 490 * kKiB, d, 700 * kKiB, 1 * kKiB << 20);
    CHECK((e.read_all(dst.ino) == d));
    e.check();
  }
  SECTION("from at or past the source's end: nothing copied, nothing logged") {
    const uint64_t seq = e.last_seq();
    CHECK(e.copy(src.ino, s.size(), dst.ino, 0, 100) == 0);
    CHECK(e.copy(src.ino, s.size() + 5000, dst.ino, 0, 100) == 0);
    CHECK(e.last_seq() == seq);
    CHECK((e.read_all(dst.ino) == d));
  }
  SECTION("within one file: ranges that do not overlap, and ones that do (EINVAL)") {
    CHECK(e.copy(src.ino, 0, src.ino, 600 * kKiB, 300 * kKiB) == 300 * kKiB);
    CHECK((e.read_all(src.ino) == model_copy(s, 0, s, 600 * kKiB, 300 * kKiB)));
    auto overlap = e.fs->copy_range(kTestCaller, {src.ino, 0, src.ino, 100, 1000});
    REQUIRE_FALSE(overlap);
    CHECK(overlap.status().err() == EINVAL);
    e.check();
  }
  SECTION("a directory (EISDIR), a symlink (EINVAL), a range past the largest offset (EOVERFLOW)") {
    Inode dir = must(e.fs->mkdir(kTestCaller, kRootIno, "d", 0755));
    Inode link = must(e.fs->symlink(kTestCaller, kRootIno, "l", "src"));
    CHECK(e.fs->copy_range(kTestCaller, {dir.ino, 0, dst.ino, 0, 10}).status().err() == EISDIR);
    CHECK(e.fs->copy_range(kTestCaller, {src.ino, 0, dir.ino, 0, 10}).status().err() == EISDIR);
    CHECK(e.fs->copy_range(kTestCaller, {link.ino, 0, dst.ino, 0, 10}).status().err() == EINVAL);
    CHECK(e.fs->copy_range(kTestCaller, {src.ino, 0, dst.ino, UINT64_MAX - 5, 10}).status().err() == EOVERFLOW);
    CHECK((e.read_all(dst.ino) == d));
  }
}

TEST_CASE("a copy that would take live data past the quota is EDQUOT and changes nothing", "[copy][quota]") {
  Env e;
  Inode src = e.create("src");
  e.write(src.ino, 0, pattern(300 * kKiB, 8));
  Inode dst = e.create("dst");
  {
    WriteTxn txn = must(e.store->begin_write());
    REQUIRE_OK(txn.set_quota(700 * kKiB));
    REQUIRE_OK(txn.commit());
  }
  // A length far past the source's end asks for nothing more than the source holds.
  CHECK(e.copy(src.ino, 0, dst.ino, 0, 1ull << 40) == 300 * kKiB);
  const uint64_t seq = e.last_seq();
  auto over = e.fs->copy_range(kTestCaller, {src.ino, 0, dst.ino, 300 * kKiB, 300 * kKiB});
  REQUIRE_FALSE(over);
  CHECK(over.status().err() == EDQUOT);
  CHECK(e.last_seq() == seq);
  CHECK(must(e.fs->getattr(dst.ino)).size == 300 * kKiB);
  CHECK(e.store->live_bytes() == 600 * kKiB);
  e.check();
}

TEST_CASE("after a copy either side changes alone; restore and past views see the copy as one operation", "[copy]") {
  Env e;
  Inode src = e.create("src");
  const std::string s = pattern(400 * kKiB, 5);
  e.write(src.ino, 0, s);
  Inode dst = e.create("dst");
  const std::string before = pattern(50 * kKiB, 6);
  e.write(dst.ino, 0, before);
  const uint64_t before_copy = e.last_seq();
  e.copy(src.ino, 0, dst.ino, 0, s.size());
  const uint64_t copy_seq = e.last_seq();

  e.write(src.ino, 10, "changed in the source");
  e.write(dst.ino, 300 * kKiB, "changed in the copy");
  CHECK((e.read_all(dst.ino) == model_copy("changed in the copy", 0, s, 300 * kKiB, 19)));
  CHECK((e.read_all(src.ino) == model_copy("changed in the source", 0, s, 10, 21)));

  Fs past(*e.store, copy_seq);  // the disk just after the copy
  std::string got(s.size(), '\0');
  REQUIRE(must(past.read(dst.ino, 0, s.size(), got.data())) == s.size());
  CHECK((got == s));

  RestoreRequest req{"/dst", before_copy, std::nullopt, false, "test"};
  must(restore(*e.store, kTestCaller, req));
  // A restore may bring a file back as a new inode: read it by its name.
  CHECK((e.read_all(must(e.fs->lookup(kRootIno, "dst")).ino) == before));
  e.check();
}

TEST_CASE("GC: the copy keeps shared data after the source goes; the blobs go with the last name", "[copy][gc]") {
  Env e;
  Inode src = e.create("src");
  const std::string s = pattern(1 << 20, 7);
  e.write(src.ino, 0, s);
  Inode dst = e.create("dst");
  e.copy(src.ino, 0, dst.ino, 0, s.size());
  {
    WriteTxn txn = must(e.store->begin_write());
    REQUIRE_OK(save_retention(txn, Retention{1, 0, 0}));  // history older than 1 ns goes
    REQUIRE_OK(txn.commit());
  }
  GcOptions o;
  REQUIRE_OK(e.fs->unlink(kTestCaller, kRootIno, "src"));
  e.create("a");  // GC never drops the newest record, which would keep the unlinked file
  o.now_ns = wall_clock_ns() + 1000000000;
  GcReport first = must(collect_garbage(*e.store, o));
  CHECK(first.inodes_freed == 1);
  CHECK(first.blobs_freed == 0);
  CHECK((e.read_all(dst.ino) == s));
  e.check();

  REQUIRE_OK(e.fs->unlink(kTestCaller, kRootIno, "dst"));
  e.create("b");
  o.now_ns = wall_clock_ns() + 1000000000;
  GcReport second = must(collect_garbage(*e.store, o));
  CHECK(second.inodes_freed == 1);
  CHECK(second.blobs_freed == 8);  // 1 MiB in 128 KiB blobs
  e.check();
}
