// fusefs/store/wal.h and the store's checkpoints and recovery (store.h,
// docs/wal-format.md): what a killed process committed is replayed, a WAL
// that ends badly ends the replay there, and a WriteTxn that does not commit
// leaves the root transaction as it found it.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <functional>
#include <map>
#include <sstream>
#include <random>
#include <thread>
#include <vector>

#include "fusefs/store/codec.h"
#include "fusefs/store/store.h"
#include "fusefs/store/wal_format.h"
#include "tests/unit/helpers.h"

using namespace roam;
using roam::testing::must;
using roam::testing::random_bytes;
using roam::testing::read_file;
using roam::testing::TempDir;
using roam::testing::write_file;

namespace {

Inode file_inode(uint64_t ino, const std::string& name) {
  Inode i;
  i.ino = ino;
  i.mode = S_IFREG | 0644;
  i.nlink = 1;
  i.parent = kRootIno;
  i.name = name;
  return i;
}

void put_file(Store& store, uint64_t ino, const std::string& name) {
  WriteTxn w = must(store.begin_write());
  REQUIRE_OK(w.put_inode(file_inode(ino, name)));
  REQUIRE_OK(w.put_dirent(kRootIno, name, Dirent{ino, S_IFREG}));
  REQUIRE_OK(w.commit());
}

std::optional<Inode> inode_of(Store& store, uint64_t ino) { return must(must(store.begin_read()).get_inode(ino)); }

// Runs `body` on the store in a child process that then dies without closing
// it (no checkpoint, no flush), as a SIGKILL would leave it.
void in_killed_child(const std::string& dir, const std::function<void(Store&)>& body) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto store = Store::open(dir, {});
    if (!store) ::_exit(10);
    body(**store);
    ::_exit(0);
  }
  int st = 0;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  REQUIRE(WIFEXITED(st));
  REQUIRE(WEXITSTATUS(st) == 0);
}

// The offsets of the WAL's records of the current generation, in order.
std::vector<std::pair<uint64_t, uint32_t>> record_offsets(const std::string& wal) {
  const std::string bytes = read_file(wal);
  std::vector<std::pair<uint64_t, uint32_t>> out;
  uint64_t at = kWalHeaderSize;
  for (uint64_t lsn = 1; at + kWalRecordHeader <= bytes.size(); ++lsn) {
    uint32_t len = 0;
    uint64_t got = 0;
    std::memcpy(&len, bytes.data() + at, 4);
    std::memcpy(&got, bytes.data() + at + 8, 8);
    if (len == 0 || got != lsn) break;
    out.emplace_back(at, len);
    at += kWalRecordHeader + len;
  }
  return out;
}

void overwrite(const std::string& path, uint64_t at, const std::string& bytes) {
  int fd = ::open(path.c_str(), O_WRONLY);
  REQUIRE(fd >= 0);
  REQUIRE(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(at)) == static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

// A blob of `data`, appended and committed; `inline_data`: noted for the WAL.
uint64_t add_blob(Store& store, const std::string& data, bool inline_data) {
  SegmentLocation loc = must(store.segments().append(data));
  WriteTxn w = must(store.begin_write());
  uint64_t id = must(w.add_blob(loc, static_cast<uint32_t>(data.size()), XXH3_64bits(data.data(), data.size())));
  if (inline_data) w.note_data(loc, data);
  w.ref_blob(id, 1);  // a blob with no reference would be GC's
  REQUIRE_OK(w.commit());
  store.segments().settle(loc);
  return id;
}

std::string blob_bytes(Store& store, uint64_t id) {
  Blob b = must(must(store.begin_read()).blob(id));
  std::string data(b.length, '\0');
  REQUIRE_OK(store.segments().read({b.segment, b.offset}, data.data(), data.size()));
  CHECK(XXH3_64bits(data.data(), data.size()) == b.xxh3);
  return data;
}

}  // namespace

TEST_CASE("what a killed process committed is replayed at the next open", "[wal]") {
  TempDir t;
  const std::string dir = t.sub("s");
  REQUIRE_OK(Store::create(dir));
  in_killed_child(dir, [](Store& s) {
    for (uint64_t ino = 2; ino < 200; ++ino) put_file(s, ino, "f" + std::to_string(ino));
    WriteTxn w = must(s.begin_write());  // changed twice: the later value wins
    REQUIRE_OK(w.put_inode(file_inode(7, "renamed")));
    REQUIRE(must(w.del(w.dbis().dirents, dirent_key(kRootIno, "f8"))));
    REQUIRE_OK(w.commit());
  });
  // The child never checkpointed: LMDB alone has none of it.
  CHECK(read_file(dir + "/wal").size() > kWalHeaderSize);
  auto store = must(Store::open(dir, {}));
  for (uint64_t ino = 2; ino < 200; ++ino) CHECK(inode_of(*store, ino).has_value());
  CHECK(inode_of(*store, 7)->name == "renamed");
  ReadTxn r = must(store->begin_read());
  CHECK_FALSE(must(r.get_dirent(kRootIno, "f8")).has_value());
  CHECK(must(r.get_dirent(kRootIno, "f9")).has_value());
  CHECK(store->counters().next_ino == 200);
}

TEST_CASE("a WriteTxn that does not commit leaves everyone else's changes in the root transaction", "[wal]") {
  TempDir t;
  const std::string dir = t.sub("s");
  REQUIRE_OK(Store::create(dir));
  auto store = must(Store::open(dir, {}));
  put_file(*store, 5, "kept");
  {
    WriteTxn w = must(store->begin_write());
    REQUIRE_OK(w.put_inode(file_inode(5, "changed")));
    REQUIRE_OK(w.put_inode(file_inode(6, "new")));
    REQUIRE(must(w.del(w.dbis().dirents, dirent_key(kRootIno, "kept"))));
    REQUIRE_OK(w.put(w.dbis().log_by_ino, codec::be64(5), codec::be64(42)));
    // destroyed without commit
  }
  CHECK(inode_of(*store, 5)->name == "kept");
  CHECK_FALSE(inode_of(*store, 6).has_value());
  {
    ReadTxn r = must(store->begin_read());
    CHECK(must(r.get_dirent(kRootIno, "kept")).has_value());
    CHECK_FALSE(must(r.raw().get(r.dbis().log_by_ino, codec::be64(5))).has_value());
  }
  // Nothing of it reached the WAL either.
  store.reset();
  auto again = must(Store::open(dir, {}));
  CHECK(inode_of(*again, 5)->name == "kept");
  CHECK_FALSE(inode_of(*again, 6).has_value());
}

TEST_CASE("a WAL append that fails (full disk) undoes the change and reports it", "[wal]") {
  TempDir t;
  const std::string dir = t.sub("s");
  REQUIRE_OK(Store::create(dir));
  {
    auto store = must(Store::open(dir, {}));
    put_file(*store, 2, "before");
  }
  // The file calls, with the WAL's writes failing on demand.
  struct FailingWal : PosixFileIo {
    int wal_fd = -1;
    bool fail = false;
    Result<int> open(const std::string& path, int flags, mode_t mode) override {
      auto fd = PosixFileIo::open(path, flags, mode);
      if (fd && path.size() >= 4 && path.compare(path.size() - 4, 4, "/wal") == 0) wal_fd = *fd;
      return fd;
    }
    Status pwrite_all(int fd, const char* buf, size_t len, off_t off) override {
      if (fail && fd == wal_fd) return Status::error(ENOSPC, "pwrite: No space left on device");
      return PosixFileIo::pwrite_all(fd, buf, len, off);
    }
  } io;
  Store::Options o;
  o.io = &io;
  auto store = must(Store::open(dir, o));
  io.fail = true;
  {
    WriteTxn w = must(store->begin_write());
    REQUIRE_OK(w.put_inode(file_inode(3, "lost")));
    Status s = w.commit();
    CHECK(s.err() == ENOSPC);
  }
  CHECK_FALSE(inode_of(*store, 3).has_value());
  io.fail = false;
  put_file(*store, 4, "after");
  CHECK(inode_of(*store, 2).has_value());
  CHECK(inode_of(*store, 4).has_value());
}

TEST_CASE("a torn or damaged record ends the replay before it", "[wal]") {
  TempDir t;
  const std::string dir = t.sub("s");
  REQUIRE_OK(Store::create(dir));
  in_killed_child(dir, [](Store& s) {
    for (uint64_t ino = 2; ino <= 6; ++ino) put_file(s, ino, "f" + std::to_string(ino));
  });
  const auto records = record_offsets(dir + "/wal");
  REQUIRE(records.size() == 5);
  SECTION("a flipped byte in record 4") {
    const auto [at, len] = records[3];
    overwrite(dir + "/wal", at + kWalRecordHeader + len / 2, "\x5a");
  }
  SECTION("record 4 cut short (its tail never written)") {
    REQUIRE(::truncate((dir + "/wal").c_str(), static_cast<off_t>(records[3].first + kWalRecordHeader + 3)) == 0);
  }
  SECTION("record 4 zeroed (a reserve the tail never reached)") {
    overwrite(dir + "/wal", records[3].first, std::string(kWalRecordHeader + records[3].second, '\0'));
  }
  auto store = must(Store::open(dir, {}));
  for (uint64_t ino = 2; ino <= 4; ++ino) CHECK(inode_of(*store, ino).has_value());
  CHECK_FALSE(inode_of(*store, 5).has_value());
  CHECK_FALSE(inode_of(*store, 6).has_value());
  // Numbers resume after what survived; new changes log and replay as usual.
  CHECK(store->counters().next_ino == 5);
  put_file(*store, 5, "again");
  store.reset();
  store = must(Store::open(dir, {}));
  CHECK(inode_of(*store, 5)->name == "again");
}

TEST_CASE("a record whose unflushed data was lost ends the replay; inline data is written back", "[wal]") {
  TempDir t;
  const std::string dir = t.sub("s");
  REQUIRE_OK(Store::create(dir));
  std::mt19937_64 rng(7);
  const std::string big = random_bytes(rng, kWalInlineData + 1), small = random_bytes(rng, 4096);
  SECTION("data not inline, never synced, missing from its segment") {
    in_killed_child(dir, [&](Store& s) {
      put_file(s, 2, "first");
      add_blob(s, big, false);
      put_file(s, 3, "after the lost data");
    });
    // A power cut kept the WAL (written back by the kernel) but not the data.
    const std::string seg = dir + "/segments/00000001.seg";
    REQUIRE(::truncate(seg.c_str(), 0) == 0);
    auto store = must(Store::open(dir, {}));
    CHECK(inode_of(*store, 2).has_value());
    CHECK_FALSE(inode_of(*store, 3).has_value());
    ReadTxn r = must(store->begin_read());
    CHECK_FALSE(must(r.raw().get(r.dbis().blobs, codec::be64(1))).has_value());
  }
  SECTION("data inline in the WAL, missing from its segment") {
    in_killed_child(dir, [&](Store& s) {
      add_blob(s, small, true);
      put_file(s, 3, "after");
    });
    REQUIRE(::truncate((dir + "/segments/00000001.seg").c_str(), 0) == 0);
    auto store = must(Store::open(dir, {}));
    CHECK(blob_bytes(*store, 1) == small);
    CHECK(inode_of(*store, 3).has_value());
  }
  SECTION("data not inline but intact (the kernel wrote it back too)") {
    in_killed_child(dir, [&](Store& s) {
      add_blob(s, big, false);
      put_file(s, 3, "after");
    });
    auto store = must(Store::open(dir, {}));
    CHECK(blob_bytes(*store, 1) == big);
    CHECK(inode_of(*store, 3).has_value());
  }
}

TEST_CASE("a sync flushes the segments before a WAL that names data not inline", "[wal]") {
  TempDir t;
  const std::string dir = t.sub("s");
  REQUIRE_OK(Store::create(dir));
  struct CountingIo : PosixFileIo {
    std::vector<std::string> flushed;
    std::map<int, std::string> paths;
    Result<int> open(const std::string& path, int flags, mode_t mode) override {
      auto fd = PosixFileIo::open(path, flags, mode);
      if (fd) paths[*fd] = path;
      return fd;
    }
    Status fdatasync(int fd) override {
      const std::string& p = paths[fd];
      flushed.push_back(p.find("/segments") != std::string::npos ? "segments" : p.substr(p.rfind('/') + 1));
      return PosixFileIo::fdatasync(fd);
    }
  } io;
  Store::Options o;
  o.io = &io;
  auto store = must(Store::open(dir, o));
  std::mt19937_64 rng(9);
  SECTION("a small write: the WAL alone, one flush") {
    add_blob(*store, random_bytes(rng, 4096), true);
    io.flushed.clear();
    REQUIRE_OK(store->sync());
    CHECK(io.flushed == std::vector<std::string>{"wal"});
  }
  SECTION("a large write: segments first, then the WAL") {
    add_blob(*store, random_bytes(rng, kWalInlineData * 2), false);
    io.flushed.clear();
    REQUIRE_OK(store->sync());
    REQUIRE(io.flushed.size() >= 2);
    CHECK(io.flushed.front() == "segments");
    CHECK(io.flushed.back() == "wal");
  }
  SECTION("small writes past the inline budget since the last sync: segments too, and after the sync, inline again") {
    for (size_t i = 0; i <= kWalInlineBudget / 4096; ++i) add_blob(*store, random_bytes(rng, 4096), true);
    io.flushed.clear();
    REQUIRE_OK(store->sync());
    REQUIRE(io.flushed.size() >= 2);
    CHECK(io.flushed.front() == "segments");
    CHECK(io.flushed.back() == "wal");
    add_blob(*store, random_bytes(rng, 4096), true);
    io.flushed.clear();
    REQUIRE_OK(store->sync());
    CHECK(io.flushed == std::vector<std::string>{"wal"});
  }
  SECTION("nothing new: no flush") {
    REQUIRE_OK(store->sync());
    io.flushed.clear();
    REQUIRE_OK(store->sync());
    CHECK(io.flushed.empty());
  }
}

TEST_CASE("checkpoints: LMDB takes the changes, the WAL starts over, a crash after LMDB's commit loses nothing", "[wal]") {
  TempDir t;
  const std::string dir = t.sub("s");
  REQUIRE_OK(Store::create(dir));
  SECTION("a checkpoint leaves nothing to replay") {
    auto store = must(Store::open(dir, {}));
    put_file(*store, 2, "a");
    CHECK(store->changed_since_checkpoint());
    REQUIRE_OK(store->checkpoint());
    CHECK_FALSE(store->changed_since_checkpoint());
    CHECK_FALSE(store->wal_bytes_past(0));
    // A reader in another process sees it now (it sees LMDB alone).
    pid_t pid = ::fork();
    if (pid == 0) {
      lmdb::Env env = must(lmdb::Env::open(dir, MDB_RDONLY, size_t{1} << 30, 16));
      lmdb::Txn txn = must(lmdb::Txn::begin(env, true));
      MDB_dbi inodes = must(txn.open_dbi("inodes", 0));
      ::_exit(must(txn.get(inodes, inode_key(2))).has_value() ? 0 : 1);
    }
    int st = 0;
    REQUIRE(::waitpid(pid, &st, 0) == pid);
    CHECK(WEXITSTATUS(st) == 0);
  }
  SECTION("a WAL still at the previous generation is not replayed twice") {
    // The moment between LMDB's commit and the WAL's new header: LMDB holds
    // the changes, the WAL still holds them too, at the old generation.
    const std::string saved = t.sub("wal.before");
    in_killed_child(dir, [&](Store& s) {
      put_file(s, 2, "a");
      WriteTxn w = must(s.begin_write());
      REQUIRE_OK(w.put(w.dbis().oplog, codec::be64(1), "x"));  // a value a replay would append to
      REQUIRE_OK(w.commit());
      write_file(saved, read_file(dir + "/wal"));
      REQUIRE_OK(s.checkpoint());
    });
    REQUIRE(::unlink((dir + "/wal").c_str()) == 0);
    write_file(dir + "/wal", read_file(saved));
    auto store = must(Store::open(dir, {}));
    CHECK(inode_of(*store, 2).has_value());
    ReadTxn r = must(store->begin_read());
    CHECK(*must(r.raw().get(r.dbis().oplog, codec::be64(1))) == "x");
  }
  SECTION("a WAL newer than LMDB is refused") {
    const std::string saved = t.sub("wal.later");
    {
      auto store = must(Store::open(dir, {}));
      put_file(*store, 2, "a");
      REQUIRE_OK(store->checkpoint());
      write_file(saved, read_file(dir + "/wal"));
    }
    // data.mdb from before that checkpoint: put back an older LMDB by
    // rewriting the WAL header's generation far ahead instead.
    std::string wal = read_file(saved);
    uint64_t gen = 0;
    std::memcpy(&gen, wal.data() + 24, 8);
    gen += 5;
    std::memcpy(wal.data() + 24, &gen, 8);
    const uint64_t sum = XXH3_64bits(wal.data(), kWalHeaderChecked);
    std::memcpy(wal.data() + kWalHeaderChecked, &sum, 8);
    REQUIRE(::unlink((dir + "/wal").c_str()) == 0);
    write_file(dir + "/wal", wal);
    auto r = Store::open(dir, {});
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().message().find("older than the WAL") != std::string::npos);
  }
}

TEST_CASE("a WAL that is not this store's is refused", "[wal]") {
  TempDir t;
  REQUIRE_OK(Store::create(t.sub("a")));
  REQUIRE_OK(Store::create(t.sub("b")));
  in_killed_child(t.sub("a"), [](Store& s) { put_file(s, 2, "a"); });
  { auto b = must(Store::open(t.sub("b"), {})); }
  REQUIRE(::unlink(t.sub("b/wal").c_str()) == 0);
  write_file(t.sub("b/wal"), read_file(t.sub("a/wal")));
  auto r = Store::open(t.sub("b"), {});
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().find("another store") != std::string::npos);
  SECTION("nor a damaged header") {
    std::string wal = read_file(t.sub("a/wal"));
    wal[20] ^= 1;
    REQUIRE(::unlink(t.sub("a/wal").c_str()) == 0);
    write_file(t.sub("a/wal"), wal);
    auto a = Store::open(t.sub("a"), {});
    REQUIRE_FALSE(a.is_ok());
    CHECK(a.status().message().find("checksum") != std::string::npos);
  }
}

TEST_CASE("a format-2 store (no WAL) is upgraded in place by a writable open; a newer format is refused", "[wal][upgrade]") {
  TempDir t;
  const std::string dir = t.sub("s");
  REQUIRE_OK(Store::create(dir));
  {
    auto store = must(Store::open(dir, {}));
    put_file(*store, 2, "from format 2");
    REQUIRE_OK(store->checkpoint());
  }
  // What format 2 left: LMDB alone, FORMAT saying 2.
  REQUIRE(::unlink((dir + "/" + std::string(kWalFile)).c_str()) == 0);
  write_file(dir + "/FORMAT", "roamdisk store\nversion 2\n");
  {
    auto store = must(Store::open(dir, {}));
    CHECK(inode_of(*store, 2)->name == "from format 2");
    put_file(*store, 3, "after the upgrade");
  }
  CHECK(read_file(dir + "/FORMAT") == "roamdisk store\nversion " + std::to_string(kFormatVersion) + "\n");
  CHECK(::access((dir + "/" + std::string(kWalFile)).c_str(), F_OK) == 0);
  auto store = must(Store::open(dir, {}));
  CHECK(inode_of(*store, 3).has_value());
  store.reset();
  // A build that reads only up to format 2 would see this FORMAT and refuse:
  // the same check, one version up.
  write_file(dir + "/FORMAT", "roamdisk store\nversion " + std::to_string(kFormatVersion + 1) + "\n");
  auto newer = Store::open(dir, {});
  REQUIRE_FALSE(newer.is_ok());
  CHECK(newer.status().message().find("newer roamdisk") != std::string::npos);
}

TEST_CASE("a read-only open after a crash sees the replayed changes when no writer holds the store", "[wal]") {
  TempDir t;
  const std::string dir = t.sub("s");
  REQUIRE_OK(Store::create(dir));
  in_killed_child(dir, [](Store& s) { put_file(s, 2, "crashed"); });
  Store::Options o;
  o.read_only = true;
  auto store = must(Store::open(dir, o));
  CHECK(inode_of(*store, 2).has_value());
}

TEST_CASE("a read-only open told not to replay reads the last checkpoint and writes nothing", "[wal]") {
  TempDir t;
  const std::string dir = t.sub("s");
  REQUIRE_OK(Store::create(dir));
  in_killed_child(dir, [](Store& s) { put_file(s, 2, "crashed"); });
  struct stat before {};
  REQUIRE(::stat((dir + "/data.mdb").c_str(), &before) == 0);
  {
    auto store = must(Store::open(dir, {.read_only = true, .replay_wal_for_reader = false}));
    CHECK_FALSE(inode_of(*store, 2).has_value());  // only in the WAL
  }
  struct stat after {};
  REQUIRE(::stat((dir + "/data.mdb").c_str(), &after) == 0);
  CHECK(after.st_mtim.tv_sec == before.st_mtim.tv_sec);
  CHECK(after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
  // The next reader that may replay still finds the change.
  auto store = must(Store::open(dir, {.read_only = true}));
  CHECK(inode_of(*store, 2).has_value());
}

TEST_CASE("concurrent writers and syncs, then a kill: every synced change is replayed", "[wal]") {
  TempDir t;
  const std::string dir = t.sub("s");
  REQUIRE_OK(Store::create(dir));
  const std::string synced_list = t.sub("synced");
  in_killed_child(dir, [&](Store& s) {
    std::vector<std::thread> threads;
    std::vector<std::vector<uint64_t>> synced(8);
    for (int th = 0; th < 8; ++th) {
      threads.emplace_back([&, th] {
        for (uint64_t i = 0; i < 50; ++i) {
          const uint64_t ino = 100 + static_cast<uint64_t>(th) * 1000 + i;
          WriteTxn w = must(s.begin_write());
          if (!w.put_inode(file_inode(ino, "t" + std::to_string(ino))) || !w.commit()) ::_exit(20);
          if (i % 5 == 0) {
            if (!s.sync()) ::_exit(21);
            synced[static_cast<size_t>(th)].push_back(ino);
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    std::string list;
    for (const auto& v : synced)
      for (uint64_t ino : v) list += std::to_string(ino) + "\n";
    write_file(synced_list, list);
  });
  auto store = must(Store::open(dir, {}));
  std::istringstream in(read_file(synced_list));
  size_t n = 0;
  for (uint64_t ino; in >> ino; ++n) CHECK(inode_of(*store, ino).has_value());
  CHECK(n == 80);
  for (uint64_t th = 0; th < 8; ++th)
    for (uint64_t i = 0; i < 50; ++i) CHECK(inode_of(*store, 100 + th * 1000 + i).has_value());
}
