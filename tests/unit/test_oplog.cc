// fusefs/oplog/oplog.h: appending to and scanning the operation log.
#include "fusefs/oplog/oplog.h"

#include <linux/fs.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <ctime>
#include <map>

#include "fusefs/engine/fs.h"
#include "fusefs/oplog/chunk.h"
#include "fusefs/oplog/past_view.h"
#include "fusefs/store/codec.h"
#include "tests/unit/format_v1.h"
#include "tests/unit/helpers.h"

using namespace roam;
using roam::testing::IndexEntries;
using roam::testing::must;
using roam::testing::TempDir;

namespace {

const Caller kCaller{1000, 1000, 77, "scan-test"};
using Seqs = std::vector<uint64_t>;

// A store with a small known history:
//   1 mkdir /a        2 mkdir /ab        3 create /a/b      4 create /ab/c
//   5 write /a/b      6 rename /ab/c -> /a/c                7 unlink /a/b
//   8 setxattr /ab
struct History {
  TempDir tmp;
  std::unique_ptr<Store> store;
  std::vector<OpRecord> log;
  uint64_t a = 0, ab = 0, b = 0, c = 0;

  History() {
    REQUIRE_OK(Store::create(tmp.sub("s")));
    store = must(Store::open(tmp.sub("s"), {}));
    Fs fs(*store);
    fs.set_commit_hook([this](const OpRecord& r) { log.push_back(r); });
    a = must(fs.mkdir(kCaller, kRootIno, "a", 0755)).ino;
    ab = must(fs.mkdir(kCaller, kRootIno, "ab", 0755)).ino;
    b = must(fs.mknod(kCaller, a, "b", S_IFREG | 0644, 0, OpKind::kCreate)).ino;
    c = must(fs.mknod(kCaller, ab, "c", S_IFREG | 0644, 0, OpKind::kCreate)).ino;
    must(fs.write(kCaller, b, 0, "data"));
    REQUIRE_OK(fs.rename(kCaller, ab, "c", a, "c", 0));
    REQUIRE_OK(fs.unlink(kCaller, a, "b"));
    REQUIRE_OK(fs.setxattr(kCaller, ab, "user.k", "v", 0));
    REQUIRE(log.size() == 8);
    for (size_t i = 0; i < log.size(); ++i) REQUIRE(log[i].seq == i + 1);
  }
  int64_t ts(uint64_t seq) const { return log.at(seq - 1).ts_ns; }

  Seqs scan(const oplog::Filter& f) {
    ReadTxn txn = must(store->begin_read());
    Seqs out;
    REQUIRE_OK(oplog::scan(txn, f, [&](const OpRecord& r) {
      out.push_back(r.seq);
      return true;
    }));
    return out;
  }
};

Seqs records_of(const Store& store, uint64_t ino, uint64_t from = 0) {
  ReadTxn txn = must(store.begin_read());
  auto seqs = must(oplog::InodeRecords::open(txn, ino, from));
  Seqs out;
  while (auto seq = must(seqs.next())) out.push_back(*seq);
  return out;
}

oplog::Filter by_path(const std::string& p) {
  oplog::Filter f;
  f.path = p;
  return f;
}

}  // namespace

TEST_CASE("scan without a filter visits every record in order", "[oplog]") {
  History h;
  CHECK(h.scan({}) == Seqs{1, 2, 3, 4, 5, 6, 7, 8});
  ReadTxn txn = must(h.store->begin_read());
  std::vector<OpRecord> recs;
  REQUIRE_OK(oplog::scan(txn, {}, [&](const OpRecord& r) {
    recs.push_back(r);
    return true;
  }));
  REQUIRE(recs.size() == 8);
  CHECK(recs[5].kind == OpKind::kRename);
  CHECK(recs[5].path == "/ab/c");
  CHECK(recs[5].path2 == "/a/c");
  CHECK(recs[5].caller.comm == "scan-test");
}

TEST_CASE("scan by time: since and until are inclusive", "[oplog]") {
  History h;
  for (uint64_t k = 1; k <= 8; ++k) {
    INFO("k = " << k);
    oplog::Filter since;
    since.since_ns = h.ts(k);
    Seqs want_since, want_until;
    for (uint64_t s = k; s <= 8; ++s) want_since.push_back(s);
    for (uint64_t s = 1; s <= k; ++s) want_until.push_back(s);
    CHECK(h.scan(since) == want_since);
    oplog::Filter until;
    until.until_ns = h.ts(k);
    CHECK(h.scan(until) == want_until);
    oplog::Filter after;
    after.since_ns = h.ts(k) + 1;
    want_since.erase(want_since.begin());
    CHECK(h.scan(after) == want_since);
  }
  oplog::Filter range;
  range.since_ns = h.ts(3);
  range.until_ns = h.ts(5);
  CHECK(h.scan(range) == Seqs{3, 4, 5});
  range.since_ns = h.ts(5);
  range.until_ns = h.ts(3);
  CHECK(h.scan(range).empty());

  oplog::Filter before_all;
  before_all.until_ns = h.ts(1) - 1;
  CHECK(h.scan(before_all).empty());
  oplog::Filter after_all;
  after_all.since_ns = h.ts(8) + 1;
  CHECK(h.scan(after_all).empty());
  oplog::Filter negative;
  negative.since_ns = -1000;
  CHECK(h.scan(negative).size() == 8);
  negative.since_ns.reset();
  negative.until_ns = -1000;
  CHECK(h.scan(negative).empty());
}

TEST_CASE("scan by kind", "[oplog]") {
  History h;
  auto kind = [&](OpKind k) {
    oplog::Filter f;
    f.kind = k;
    return h.scan(f);
  };
  CHECK(kind(OpKind::kMkdir) == Seqs{1, 2});
  CHECK(kind(OpKind::kCreate) == Seqs{3, 4});
  CHECK(kind(OpKind::kWrite) == Seqs{5});
  CHECK(kind(OpKind::kRename) == Seqs{6});
  CHECK(kind(OpKind::kUnlink) == Seqs{7});
  CHECK(kind(OpKind::kSetxattr) == Seqs{8});
  CHECK(kind(OpKind::kRestore).empty());
}

TEST_CASE("scan by path prefix: /a matches /a/b, not /ab", "[oplog]") {
  History h;
  CHECK(h.scan(by_path("/a")) == Seqs{1, 3, 5, 6, 7});  // 6 through its new path /a/c
  CHECK(h.scan(by_path("/ab")) == Seqs{2, 4, 6, 8});    // 6 through its old path /ab/c
  CHECK(h.scan(by_path("/a/b")) == Seqs{3, 5, 7});
  CHECK(h.scan(by_path("/a/c")) == Seqs{6});
  CHECK(h.scan(by_path("/ab/c")) == Seqs{4, 6});
  CHECK(h.scan(by_path("/")) == Seqs{1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(h.scan(by_path("/nothing")).empty());
  CHECK(h.scan(by_path("/a/b/c")).empty());
  // combined with other filters
  oplog::Filter f = by_path("/a");
  f.kind = OpKind::kCreate;
  CHECK(h.scan(f) == Seqs{3});
  f.kind.reset();
  f.since_ns = h.ts(4);
  CHECK(h.scan(f) == Seqs{5, 6, 7});
}

TEST_CASE("scan by inode: every record that touched it", "[oplog]") {
  History h;
  auto ino = [&](uint64_t i) {
    oplog::Filter f;
    f.ino = i;
    return h.scan(f);
  };
  CHECK(ino(h.b) == Seqs{3, 5, 7});
  CHECK(ino(h.c) == Seqs{4, 6});
  CHECK(ino(h.a) == Seqs{1, 3, 6, 7});   // itself, then as the parent that changed
  CHECK(ino(h.ab) == Seqs{2, 4, 6, 8});
  CHECK(ino(kRootIno) == Seqs{1, 2});
  CHECK(ino(9999).empty());
  oplog::Filter f;
  f.ino = h.a;
  f.kind = OpKind::kCreate;
  CHECK(h.scan(f) == Seqs{3});
  f.kind.reset();
  f.since_ns = h.ts(4);
  f.until_ns = h.ts(6);
  CHECK(h.scan(f) == Seqs{6});
  f = {};
  f.ino = h.a;
  f.path = "/ab";
  CHECK(h.scan(f) == Seqs{6});
}

TEST_CASE("scan stops at the limit or when the visitor says so", "[oplog]") {
  History h;
  oplog::Filter f;
  f.limit = 3;
  CHECK(h.scan(f) == Seqs{1, 2, 3});
  f.kind = OpKind::kCreate;
  f.limit = 1;
  CHECK(h.scan(f) == Seqs{3});
  f = {};
  f.ino = h.a;
  f.limit = 2;
  CHECK(h.scan(f) == Seqs{1, 3});

  ReadTxn txn = must(h.store->begin_read());
  int visits = 0;
  REQUIRE_OK(oplog::scan(txn, {}, [&](const OpRecord&) { return ++visits < 2; }));
  CHECK(visits == 2);
}

TEST_CASE("get fetches one record by seq", "[oplog]") {
  History h;
  ReadTxn txn = must(h.store->begin_read());
  auto r = must(oplog::get(txn, 6));
  REQUIRE(r.has_value());
  CHECK(r->seq == 6);
  CHECK(r->kind == OpKind::kRename);
  CHECK(r->ts_ns == h.ts(6));
  CHECK_FALSE(must(oplog::get(txn, 9)).has_value());
  CHECK_FALSE(must(oplog::get(txn, 0)).has_value());
}

TEST_CASE("a RecordReader reads any seq, in any order, across chunks", "[oplog]") {
  TempDir t;
  REQUIRE_OK(Store::create(t.sub("s")));
  auto store = must(Store::open(t.sub("s"), {}));
  for (uint64_t i = 1; i <= 20; ++i) {  // names of 700 bytes: five records to a chunk
    WriteTxn w = must(store->begin_write());
    OpRecord r;
    r.kind = OpKind::kSetxattr;
    r.ino = 5;
    r.name = std::string(700, static_cast<char>('a' + i));
    REQUIRE_OK(oplog::append(w, r));
    REQUIRE_OK(w.commit());
  }
  ReadTxn txn = must(store->begin_read());
  oplog::RecordReader reader(txn);
  for (uint64_t seq : {3, 4, 1, 20, 19, 7, 7, 12, 2, 16, 21, 5, 0, 11}) {
    auto want = must(oplog::get(txn, seq));
    auto got = must(reader.get(seq));
    REQUIRE(got.has_value() == want.has_value());
    if (!got) continue;
    CHECK(got->seq == seq);
    CHECK(got->name == std::string(700, static_cast<char>('a' + seq)));
    CHECK(got->ts_ns == want->ts_ns);
  }
}

TEST_CASE("append: seq counts up, time never repeats or goes back", "[oplog]") {
  TempDir t;
  REQUIRE_OK(Store::create(t.sub("s")));
  auto store = must(Store::open(t.sub("s"), {}));
  const int64_t future = 4102444800LL * 1000000000LL;  // 2100-01-01, far ahead of the clock
  {
    WriteTxn w = must(store->begin_write());
    int64_t prev = 0;
    for (int i = 0; i < 1000; ++i) {  // faster than the clock ticks
      OpRecord r;
      r.kind = OpKind::kSetattr;
      r.ino = 5;
      REQUIRE_OK(oplog::append(w, r));
      CHECK(r.seq == static_cast<uint64_t>(i + 1));
      REQUIRE(r.ts_ns > prev);
      prev = r.ts_ns;
    }
    // a clock that went backwards (a newest record from the future) cannot reorder the log
    OpRecord ahead;
    ahead.kind = OpKind::kMkdir;
    ahead.seq = 1001;
    ahead.ts_ns = future;
    REQUIRE_OK(w.put(w.dbis().oplog, codec::be64(1001), oplog::Chunk::encode({ahead}), MDB_APPEND));
    OpRecord r;
    r.kind = OpKind::kWrite;
    r.ino = 6;
    r.ino2 = 7;
    r.inodes_before.push_back({8, std::nullopt});
    REQUIRE_OK(oplog::append(w, r));
    CHECK(r.ts_ns == future + 1);
    CHECK(r.seq == 1002);
    REQUIRE_OK(w.commit());
  }
  // nothing is stored but the log: the next record continues after a reopen
  store.reset();
  store = must(Store::open(t.sub("s"), {}));
  {
    WriteTxn w = must(store->begin_write());
    OpRecord r;
    r.kind = OpKind::kMkdir;
    REQUIRE_OK(oplog::append(w, r));
    CHECK(r.seq == 1003);
    CHECK(r.ts_ns == future + 2);
    REQUIRE_OK(w.commit());
  }
  ReadTxn txn = must(store->begin_read());
  auto by_ino = [&](uint64_t i) {
    oplog::Filter f;
    f.ino = i;
    Seqs out;
    REQUIRE_OK(oplog::scan(txn, f, [&](const OpRecord& r) {
      out.push_back(r.seq);
      return true;
    }));
    return out;
  };
  CHECK(by_ino(6) == Seqs{1002});
  CHECK(by_ino(7) == Seqs{1002});  // ino2 is indexed
  CHECK(by_ino(8) == Seqs{1002});  // and every inode in the undo payload
  CHECK(by_ino(0).empty());        // "no inode" is not indexed
  CHECK(by_ino(5).size() == 1000);  // more than a sub-page holds: a tree of its own
  Seqs from_500;
  for (uint64_t seq = 500; seq <= 1000; ++seq) from_500.push_back(seq);
  CHECK(records_of(*store, 5, 500) == from_500);
  CHECK(records_of(*store, 5, 1001).empty());
  CHECK(records_of(*store, 8, 1001) == Seqs{1002});
  oplog::Filter f;
  f.since_ns = future;
  Seqs late;
  REQUIRE_OK(oplog::scan(txn, f, [&](const OpRecord& r) {
    late.push_back(r.seq);
    return true;
  }));
  CHECK(late == Seqs{1001, 1002, 1003});
}

TEST_CASE("the per-inode index: records from a seq on, and has_records", "[oplog]") {
  History h;
  CHECK(records_of(*h.store, h.a) == Seqs{1, 3, 6, 7});
  CHECK(records_of(*h.store, h.a, 2) == Seqs{3, 6, 7});
  CHECK(records_of(*h.store, h.a, 6) == Seqs{6, 7});
  CHECK(records_of(*h.store, h.a, 8).empty());
  CHECK(records_of(*h.store, h.c, 5) == Seqs{6});
  CHECK(records_of(*h.store, 9999).empty());
  ReadTxn txn = must(h.store->begin_read());
  CHECK(must(oplog::has_records(txn, h.c)));
  CHECK(must(oplog::has_records(txn, kRootIno)));
  CHECK_FALSE(must(oplog::has_records(txn, 9999)));
  CHECK_FALSE(must(oplog::has_records(txn, 0)));
}

TEST_CASE("drop_oldest removes the first records of the oldest chunk and their index values", "[oplog]") {
  TempDir t;
  REQUIRE_OK(Store::create(t.sub("s")));
  auto store = must(Store::open(t.sub("s"), {}));
  auto append = [&](uint64_t ino2, size_t name_bytes) {
    WriteTxn w = must(store->begin_write());
    OpRecord r;
    r.kind = OpKind::kSetxattr;
    r.ino = 5;
    r.ino2 = ino2;
    r.name = std::string(name_bytes, static_cast<char>('a' + ino2 % 26));
    REQUIRE_OK(oplog::append(w, r));
    REQUIRE_OK(w.commit());
  };
  for (uint64_t i = 1; i <= 5; ++i) append(10 + i, 1500);  // two such records fill a chunk
  auto drop = [&](size_t how_many) -> Seqs {
    WriteTxn w = must(store->begin_write());
    auto records = must(oplog::oldest_droppable(w));
    if (!records) return {};
    records->resize(std::min(how_many, records->size()));
    REQUIRE_OK(oplog::drop_oldest(w, *records));
    REQUIRE_OK(w.commit());
    Seqs seqs;
    for (const OpRecord& r : *records) seqs.push_back(r.seq);
    return seqs;
  };
  CHECK(drop(99) == Seqs{1, 2});  // a whole chunk
  {
    ReadTxn txn = must(store->begin_read());
    CHECK_FALSE(must(oplog::get(txn, 2)).has_value());
    CHECK(must(oplog::get(txn, 3))->name == std::string(1500, 'n'));
    CHECK(must(oplog::seq_bounds(txn)) == std::pair<uint64_t, uint64_t>{3, 5});
    CHECK_FALSE(must(oplog::has_records(txn, 12)));
    CHECK(must(oplog::has_records(txn, 13)));
  }
  CHECK(records_of(*store, 5) == Seqs{3, 4, 5});
  CHECK(drop(1) == Seqs{3});  // part of one: 4 is written back as a chunk of its own
  CHECK(records_of(*store, 5) == Seqs{4, 5});
  CHECK(must(oplog::get(must(store->begin_read()), 4))->name == std::string(1500, 'o'));
  CHECK(drop(99) == Seqs{4});
  CHECK(drop(99).empty());  // 5 is the newest record: never dropped
  for (uint64_t i = 6; i <= 8; ++i) append(10 + i, 10);  // 6..8 join 5's chunk
  CHECK(drop(99) == Seqs{5, 6, 7});  // all but the newest of the newest chunk
  {
    ReadTxn txn = must(store->begin_read());
    CHECK(must(oplog::seq_bounds(txn)) == std::pair<uint64_t, uint64_t>{8, 8});
    CHECK(must(oplog::get(txn, 8))->ino2 == 18);
  }
  append(19, 10);
  CHECK(records_of(*store, 5) == Seqs{8, 9});
  {
    // records that are not the first of the oldest chunk, or not in order, are refused
    WriteTxn w = must(store->begin_write());
    auto records = must(oplog::oldest_droppable(w));
    REQUIRE(records);
    REQUIRE(records->size() == 1);
    std::vector<OpRecord> newest{*must(oplog::get(w, 9))};
    CHECK(oplog::drop_oldest(w, newest).err() == EINVAL);
    std::vector<OpRecord> gap{*must(oplog::get(w, 8)), *must(oplog::get(w, 8))};
    CHECK(oplog::drop_oldest(w, gap).err() == EINVAL);
  }
}

TEST_CASE("append keeps an inode's seqs in order even when the index holds a later one", "[oplog]") {
  TempDir t;
  REQUIRE_OK(Store::create(t.sub("s")));
  auto store = must(Store::open(t.sub("s"), {}));
  WriteTxn w = must(store->begin_write());
  // a damaged index: a value for a record that does not exist (yet)
  REQUIRE_OK(w.put(w.dbis().log_by_ino, codec::be64(5), codec::be64(3)));
  for (int i = 0; i < 4; ++i) {
    OpRecord r;
    r.kind = OpKind::kSetattr;
    r.ino = 5;
    REQUIRE_OK(oplog::append(w, r));
  }
  REQUIRE_OK(w.commit());
  CHECK(records_of(*store, 5) == Seqs{1, 2, 3, 4});  // 3 once: the pair was already there
}

TEST_CASE("a format-1 store's log reads the same read-only, and after the upgrade", "[oplog][upgrade]") {
  History h;
  const std::string dir = h.tmp.sub("s");
  const std::vector<uint64_t> inos{kRootIno, h.a, h.ab, h.b, h.c};
  auto by_ino = [&](uint64_t ino) {
    oplog::Filter f;
    f.ino = ino;
    return h.scan(f);
  };
  std::map<uint64_t, Seqs> want;
  for (uint64_t ino : inos) want[ino] = by_ino(ino);
  // Every inode after every record, read back through the partial images.
  auto past_inodes = [&] {
    std::vector<std::optional<Inode>> out;
    ReadTxn txn = must(h.store->begin_read());
    for (uint64_t seq = 0; seq <= 8; ++seq) {
      PastView past(txn, seq);
      for (uint64_t ino : inos) out.push_back(must(past.inode(ino)));
    }
    return out;
  };
  const auto past_want = past_inodes();
  h.store.reset();
  roam::testing::downgrade_to_v1(dir);
  auto same = [&] {
    for (uint64_t ino : inos) {
      INFO("inode " << ino);
      CHECK(by_ino(ino) == want[ino]);
      CHECK(records_of(*h.store, ino, 4) == h.scan([&] {
        oplog::Filter f;
        f.ino = ino;
        f.since_ns = h.ts(4);
        return f;
      }()));
    }
    CHECK(h.scan({}) == Seqs{1, 2, 3, 4, 5, 6, 7, 8});
    CHECK(past_inodes() == past_want);
  };
  Store::Options ro;
  ro.read_only = true;
  h.store = must(Store::open(dir, ro));
  REQUIRE(h.store->dbis().v1_log_ino.has_value());
  same();
  h.store.reset();
  h.store = must(Store::open(dir, {}));  // upgrades
  REQUIRE_FALSE(h.store->dbis().v1_log_ino.has_value());
  same();
  // and the log goes on
  Fs fs(*h.store);
  must(fs.mkdir(kCaller, h.a, "later", 0755));
  want[h.a].push_back(9);
  CHECK(by_ino(h.a) == want[h.a]);
  CHECK(past_inodes() == past_want);  // format-1 records before a chunk of format-2 ones
}

TEST_CASE("path_within", "[oplog]") {
  using oplog::path_within;
  CHECK(path_within("/a", "/a"));
  CHECK(path_within("/a/b", "/a"));
  CHECK(path_within("/a/b/c", "/a"));
  CHECK(path_within("/a/b/c", "/a/b"));
  CHECK_FALSE(path_within("/ab", "/a"));
  CHECK_FALSE(path_within("/a/bc", "/a/b"));
  CHECK_FALSE(path_within("/a", "/a/b"));
  CHECK_FALSE(path_within("/b", "/a"));
  CHECK_FALSE(path_within("", "/a"));
  CHECK(path_within("/", "/"));
  CHECK(path_within("/anything/at/all", "/"));
  CHECK_FALSE(path_within("", "/"));  // records without a path are not "under /"
}
