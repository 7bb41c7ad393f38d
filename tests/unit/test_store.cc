// fusefs/store/store.h: creating and opening stores, transactions, remap().
#include "fusefs/store/store.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "fusefs/oplog/oplog.h"
#include "fusefs/store/codec.h"
#include "tests/unit/format_v1.h"
#include "tests/unit/helpers.h"

using namespace roam;
using roam::testing::IndexEntries;
using roam::testing::must;
using roam::testing::read_file;
using roam::testing::TempDir;
using roam::testing::write_file;

namespace {

std::unique_ptr<Store> make_store(const TempDir& t, const std::string& name = "store") {
  std::string dir = t.sub(name);
  REQUIRE_OK(Store::create(dir));
  return must(Store::open(dir, {}));
}

void require_message_has(const Status& s, const std::string& what) {
  INFO("status: " << roam::testing::describe(s));
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.message().find(what) != std::string::npos);
}

Inode file_inode(uint64_t ino, uint64_t parent, const std::string& name) {
  Inode i;
  i.ino = ino;
  i.mode = S_IFREG | 0644;
  i.nlink = 1;
  i.parent = parent;
  i.name = name;
  return i;
}

// All extents of `ino`, straight from the table.
std::vector<Extent> all_extents(const StoreTxn& txn, uint64_t ino) {
  std::vector<Extent> out;
  REQUIRE_OK(txn.scan_table(txn.dbis().extents, codec::be64(ino), [&](std::string_view k, std::string_view v) {
    auto e = decode_extent(codec::get_be64(k, 8), v);
    REQUIRE(e.is_ok());
    out.push_back(*e);
    return Status::ok();
  }));
  return out;
}

std::map<uint64_t, uint64_t> all_blob_refs(const StoreTxn& txn) {
  std::map<uint64_t, uint64_t> out;
  REQUIRE_OK(txn.scan_table(txn.dbis().blobs, {}, [&](std::string_view k, std::string_view v) {
    auto b = decode_blob(v);
    REQUIRE(b.is_ok());
    out[codec::get_be64(k)] = b->refs;
    return Status::ok();
  }));
  return out;
}

// Live extents (all inodes) plus pieces handed out in `replaced` = Blob::refs.
void check_refcounts(Store& store, const std::vector<Extent>& replaced_so_far) {
  ReadTxn txn = must(store.begin_read());
  std::map<uint64_t, uint64_t> expected;
  REQUIRE_OK(txn.scan_table(txn.dbis().extents, {}, [&](std::string_view k, std::string_view v) {
    auto e = decode_extent(codec::get_be64(k, 8), v);
    REQUIRE(e.is_ok());
    ++expected[e->blob];
    return Status::ok();
  }));
  for (const Extent& e : replaced_so_far) ++expected[e.blob];
  auto refs = all_blob_refs(txn);
  for (auto& [blob, n] : refs) {
    INFO("blob " << blob);
    CHECK(n == expected[blob]);
    expected.erase(blob);
  }
  CHECK(expected.empty());  // no reference to a blob that does not exist
}


// A per-inode log index of every shape LMDB stores: inodes with one seq (a
// plain node), a few (a sub-page) and hundreds (a tree of their own), seqs
// interleaved between inodes as records interleave. In table order.
IndexEntries sample_index() {
  std::mt19937_64 rng(7);
  IndexEntries out;
  for (uint64_t seq = 1; seq <= 3000; ++seq) {
    out.emplace_back(rng() % 3 == 0 ? 2 : 3 + rng() % 60, seq);  // inode 2: a busy directory
    if (rng() % 2) out.emplace_back(100 + rng() % 400, seq);      // a second inode, mostly once or twice
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<uint64_t> seqs_in(const IndexEntries& index, uint64_t ino, uint64_t from = 0) {
  std::vector<uint64_t> out;
  for (const auto& [i, seq] : index)
    if (i == ino && seq >= from) out.push_back(seq);
  return out;
}

std::vector<uint64_t> seqs_of(const Store& store, uint64_t ino, uint64_t from = 0) {
  ReadTxn txn = must(store.begin_read());
  auto seqs = must(oplog::InodeRecords::open(txn, ino, from));
  std::vector<uint64_t> out;
  while (auto seq = must(seqs.next())) out.push_back(*seq);
  return out;
}

// The index read through the store (either format) agrees with `index`, for
// every inode in it and a few that are not, from several starting seqs.
void require_index(const Store& store, const IndexEntries& index) {
  std::set<uint64_t> inos{1, 99, 100000};
  for (const auto& [ino, seq] : index) inos.insert(ino);
  for (uint64_t ino : inos) {
    INFO("inode " << ino);
    REQUIRE(seqs_of(store, ino) == seqs_in(index, ino));
    for (uint64_t from : {uint64_t{2}, uint64_t{1500}, uint64_t{2999}, uint64_t{5000}})
      REQUIRE(seqs_of(store, ino, from) == seqs_in(index, ino, from));
    ReadTxn txn = must(store.begin_read());
    CHECK(must(oplog::has_records(txn, ino)) == !seqs_in(index, ino).empty());
  }
}

// A new store and a sample index to write into it.
struct SampleStore {
  TempDir t;
  const std::string dir = t.sub("s");
  const IndexEntries index = sample_index();
  SampleStore() { REQUIRE_OK(Store::create(dir)); }
};

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

// ---------------------------------------------------------------- create / open

TEST_CASE("create makes an openable store with a root directory", "[store]") {
  TempDir t;
  SECTION("directory that does not exist yet") { REQUIRE_OK(Store::create(t.sub("new"))); }
  SECTION("existing empty directory") {
    REQUIRE(::mkdir(t.sub("new").c_str(), 0700) == 0);
    REQUIRE_OK(Store::create(t.sub("new")));
  }
  const std::string dir = t.sub("new");
  CHECK(read_file(dir + "/FORMAT") == "roamdisk store\nversion " + std::to_string(kFormatVersion) + "\n");
  CHECK(roam::testing::has_table(dir, "log_by_ino"));
  CHECK_FALSE(roam::testing::has_table(dir, "log_ino"));
  struct stat st {};
  CHECK(::stat((dir + "/segments").c_str(), &st) == 0);
  CHECK(S_ISDIR(st.st_mode));
  auto store = must(Store::open(dir, {}));
  ReadTxn txn = must(store->begin_read());
  Inode root = must(txn.inode(kRootIno));
  CHECK(S_ISDIR(root.mode));
  CHECK(root.nlink == 2);
  CHECK(root.parent == kRootIno);
  CHECK(must(txn.dir_is_empty(kRootIno)));
  CHECK(must(txn.path_of(kRootIno)) == "/");
  CHECK_FALSE(store->read_only());
  CHECK(store->dir() == dir);
}

TEST_CASE("create refuses a non-empty directory", "[store]") {
  TempDir t;
  REQUIRE(::mkdir(t.sub("full").c_str(), 0700) == 0);
  write_file(t.sub("full/precious.txt"), "do not touch");
  Status s = Store::create(t.sub("full"));
  REQUIRE_ERR(s, EEXIST);
  require_message_has(s, "not empty");
  CHECK(read_file(t.sub("full/precious.txt")) == "do not touch");
  struct stat st {};
  CHECK(::stat(t.sub("full/FORMAT").c_str(), &st) != 0);

  // ... and an existing store
  REQUIRE_OK(Store::create(t.sub("s")));
  REQUIRE_ERR(Store::create(t.sub("s")), EEXIST);
}

TEST_CASE("open explains what is wrong with a directory that is not a store", "[store]") {
  TempDir t;
  SECTION("missing directory") {
    auto r = Store::open(t.sub("nothing-here"), {});
    REQUIRE_ERR(r, ENOENT);
    require_message_has(r.status(), t.sub("nothing-here"));
  }
  SECTION("a regular file") {
    write_file(t.sub("file"), "x");
    auto r = Store::open(t.sub("file"), {});
    REQUIRE_ERR(r, ENOTDIR);
  }
  SECTION("directory without FORMAT") {
    REQUIRE(::mkdir(t.sub("plain").c_str(), 0700) == 0);
    auto r = Store::open(t.sub("plain"), {});
    REQUIRE_ERR(r, EINVAL);
    require_message_has(r.status(), "not a roamdisk store");
    require_message_has(r.status(), "mkfs");
    // nothing was created in it
    CHECK(::rmdir(t.sub("plain").c_str()) == 0);
  }
  SECTION("foreign FORMAT") {
    REQUIRE(::mkdir(t.sub("other").c_str(), 0700) == 0);
    write_file(t.sub("other/FORMAT"), "something else\nversion 1\n");
    auto r = Store::open(t.sub("other"), {});
    REQUIRE_ERR(r, EINVAL);
    require_message_has(r.status(), "not a roamdisk store");
  }
  SECTION("FORMAT from a newer roamdisk") {
    REQUIRE_OK(Store::create(t.sub("s")));
    REQUIRE(::unlink(t.sub("s/FORMAT").c_str()) == 0);
    write_file(t.sub("s/FORMAT"), "roamdisk store\nversion " + std::to_string(kFormatVersion + 1) + "\n");
    auto r = Store::open(t.sub("s"), {});
    REQUIRE_FALSE(r.is_ok());
    require_message_has(r.status(), "newer");
    require_message_has(r.status(), "upgrade");
  }
  SECTION("FORMAT with version 0") {
    REQUIRE_OK(Store::create(t.sub("s")));
    REQUIRE(::unlink(t.sub("s/FORMAT").c_str()) == 0);
    write_file(t.sub("s/FORMAT"), "roamdisk store\nversion 0\n");
    REQUIRE_ERR(Store::open(t.sub("s"), {}), EINVAL);
  }
}

TEST_CASE("open of a store whose data.mdb is damaged fails cleanly", "[store]") {
  TempDir t;
  const std::string dir = t.sub("s");
  REQUIRE_OK(Store::create(dir));
  {
    auto store = must(Store::open(dir, {}));
    WriteTxn w = must(store->begin_write());
    for (uint64_t ino = 2; ino < 400; ++ino) REQUIRE_OK(w.put_inode(file_inode(ino, 1, std::string(100, 'f'))));
    REQUIRE_OK(w.commit());
    REQUIRE_OK(store->sync());
  }
  const std::string mdb = dir + "/data.mdb";
  const std::string original = read_file(mdb);
  REQUIRE(original.size() >= 4 * 8192);
  std::mt19937_64 rng(40);
  SECTION("every byte random") { write_file(mdb, roam::testing::random_bytes(rng, original.size())); }
  SECTION("meta pages zeroed") {
    std::string v = original;
    std::fill(v.begin(), v.begin() + 8192, '\0');
    write_file(mdb, v);
  }
  SECTION("one page of garbage") { write_file(mdb, roam::testing::random_bytes(rng, 4096)); }
  SECTION("cut short after intact meta pages (reads through the map would SIGBUS)") {
    write_file(mdb, std::string_view(original).substr(0, 8192));
  }
  for (bool ro : {true, false}) {
    Store::Options o;
    o.read_only = ro;
    auto r = Store::open(dir, o);
    INFO("read_only " << ro << ": " << roam::testing::describe(r.status()));
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().err() == EIO);
    CHECK(r.status().message().find("corrupt") != std::string::npos);
    CHECK(r.status().message().find(dir) != std::string::npos);
  }
}

TEST_CASE("a store without its LMDB file is corrupt, not silently empty", "[store]") {
  TempDir t;
  const std::string dir = t.sub("s");
  REQUIRE_OK(Store::create(dir));
  REQUIRE(::unlink((dir + "/data.mdb").c_str()) == 0);
  auto r = Store::open(dir, {});
  REQUIRE_ERR(r, EIO);
  require_message_has(r.status(), "corrupt");
}

TEST_CASE("only one writer: a second writable open is EBUSY", "[store]") {
  TempDir t;
  const std::string dir = t.sub("s");
  REQUIRE_OK(Store::create(dir));
  {
    auto first = must(Store::open(dir, {}));
    auto second = Store::open(dir, {});
    REQUIRE_ERR(second, EBUSY);
    require_message_has(second.status(), "in use");
    require_message_has(second.status(), dir);

    // Another process is refused too.
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      auto r = Store::open(dir, {});
      ::_exit(!r.is_ok() && r.status().err() == EBUSY ? 0 : 1);
    }
    int wstatus = 0;
    REQUIRE(::waitpid(pid, &wstatus, 0) == pid);
    CHECK(WIFEXITED(wstatus));
    CHECK(WEXITSTATUS(wstatus) == 0);
  }
  // Once the writer is gone the store opens again.
  CHECK(Store::open(dir, {}).is_ok());
}

TEST_CASE("a read-only open works while a writer has the store", "[store]") {
  TempDir t;
  const std::string dir = t.sub("s");
  REQUIRE_OK(Store::create(dir));
  auto writer = must(Store::open(dir, {}));
  {
    WriteTxn w = must(writer->begin_write());
    REQUIRE_OK(w.put_inode(file_inode(2, 1, "committed")));
    REQUIRE_OK(w.put_dirent(1, "committed", Dirent{2, S_IFREG}));
    REQUIRE_OK(w.commit());
  }
  // A reader sees the writer's last checkpoint (store.h).
  REQUIRE_OK(writer->checkpoint());
  // LMDB must not be opened twice in one process, so the reader is another
  // process (as roamctl would be). Exit codes say which check failed.
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    Store::Options o;
    o.read_only = true;
    auto r = Store::open(dir, o);
    if (!r.is_ok()) ::_exit(10);
    Store& s = **r;
    if (!s.read_only()) ::_exit(11);
    auto txn = s.begin_read();
    if (!txn.is_ok()) ::_exit(12);
    auto d = txn->get_dirent(1, "committed");
    if (!d.is_ok() || !*d || (*d)->ino != 2) ::_exit(13);
    auto p = txn->path_of(2);
    if (!p.is_ok() || *p != "/committed") ::_exit(14);
    auto w = s.begin_write();
    if (w.is_ok() || w.status().err() != EROFS) ::_exit(15);
    ::_exit(0);
  }
  int wstatus = 0;
  REQUIRE(::waitpid(pid, &wstatus, 0) == pid);
  REQUIRE(WIFEXITED(wstatus));
  CHECK(WEXITSTATUS(wstatus) == 0);
  // The writer is unaffected.
  WriteTxn w = must(writer->begin_write());
  REQUIRE_OK(w.put_inode(file_inode(3, 1, "later")));
  REQUIRE_OK(w.commit());
}

// ---------------------------------------------------------------- format 1

TEST_CASE("a writable open upgrades a format-1 store: same index, new table, the current FORMAT", "[store][upgrade]") {
  SampleStore sample;
  const std::string& dir = sample.dir;
  const IndexEntries& index = sample.index;
  REQUIRE(seqs_in(index, 2).size() > 600);  // more than a sub-page holds
  roam::testing::downgrade_to_v1(dir, index);
  REQUIRE(read_file(dir + "/FORMAT") == "roamdisk store\nversion 1\n");
  const size_t batch = GENERATE(as<size_t>{}, 1, 7, 1000, size_t{1} << 20);
  INFO("batch " << batch);
  Store::Options o;
  o.upgrade_batch = batch;
  {
    auto store = must(Store::open(dir, o));
    CHECK(read_file(dir + "/FORMAT") == "roamdisk store\nversion " + std::to_string(kFormatVersion) + "\n");
    CHECK_FALSE(exists(dir + "/FORMAT.tmp"));
    require_index(*store, index);
  }
  CHECK(roam::testing::read_log_by_ino(dir) == index);
  CHECK_FALSE(roam::testing::has_table(dir, "log_ino"));
  // Upgraded once: the next open finds nothing to do.
  auto store = must(Store::open(dir, {}));
  require_index(*store, index);
}

namespace {

// A store left between the steps of an upgrade: a read-only open reads it
// as it is, the next writable open finishes the upgrade.
void require_upgrade_finishes(const std::string& dir, const IndexEntries& index) {
  REQUIRE(read_file(dir + "/FORMAT") == "roamdisk store\nversion 1\n");
  {
    Store::Options ro;
    ro.read_only = true;
    auto store = must(Store::open(dir, ro));  // reads whichever table is complete
    require_index(*store, index);
  }
  Store::Options o;
  o.upgrade_batch = 100;
  auto store = must(Store::open(dir, o));
  CHECK(read_file(dir + "/FORMAT") == "roamdisk store\nversion " + std::to_string(kFormatVersion) + "\n");
  require_index(*store, index);
  store.reset();
  CHECK(roam::testing::read_log_by_ino(dir) == index);
  CHECK_FALSE(roam::testing::has_table(dir, "log_ino"));
}

}  // namespace

TEST_CASE("an upgrade stopped after some batches is finished by the next writable open", "[store][upgrade]") {
  SampleStore sample;
  const std::string& dir = sample.dir;
  const IndexEntries& index = sample.index;
  // Both tables; log_by_ino has the first `copied` entries. 1234 ends inside
  // inode 2's values (a tree of their own by then), 400 inside a sub-page.
  const size_t copied = GENERATE_COPY(as<size_t>{}, 1, 400, 1234, index.size() - 1, index.size());
  INFO("copied " << copied);
  roam::testing::downgrade_to_v1(dir, index, copied);
  REQUIRE(roam::testing::has_table(dir, "log_ino"));
  require_upgrade_finishes(dir, index);
}

TEST_CASE("an upgrade stopped before FORMAT was replaced is finished by the next writable open", "[store][upgrade]") {
  SampleStore sample;
  const std::string& dir = sample.dir;
  const IndexEntries& index = sample.index;
  roam::testing::downgrade_to_v1(dir, index, index.size());
  {
    lmdb::Env env = roam::testing::open_raw_env(dir);
    lmdb::Txn txn = must(lmdb::Txn::begin(env, false));
    REQUIRE_OK(txn.drop(must(txn.open_dbi("log_ino", 0))));
    REQUIRE_OK(txn.commit());
  }
  REQUIRE_FALSE(roam::testing::has_table(dir, "log_ino"));
  require_upgrade_finishes(dir, index);
}

TEST_CASE("a read-only open reads a format-1 store as it is and changes nothing", "[store][upgrade]") {
  SampleStore sample;
  const std::string& dir = sample.dir;
  const IndexEntries& index = sample.index;
  roam::testing::downgrade_to_v1(dir, index);
  const std::string mdb_before = read_file(dir + "/data.mdb");
  {
    Store::Options ro;
    ro.read_only = true;
    auto store = must(Store::open(dir, ro));
    CHECK(store->dbis().v1_log_ino.has_value());
    require_index(*store, index);
    CHECK_ERR(store->begin_write(), EROFS);
  }
  CHECK(read_file(dir + "/FORMAT") == "roamdisk store\nversion 1\n");
  CHECK(roam::testing::has_table(dir, "log_ino"));
  CHECK_FALSE(roam::testing::has_table(dir, "log_by_ino"));
  CHECK(read_file(dir + "/data.mdb") == mdb_before);
}

TEST_CASE("a read-only reader of a format-1 store is told when a writer upgrades it meanwhile", "[store][upgrade]") {
  SampleStore sample;
  const std::string& dir = sample.dir;
  const IndexEntries& index = sample.index;
  roam::testing::downgrade_to_v1(dir, index);
  int to_parent[2], to_child[2];
  REQUIRE(::pipe(to_parent) == 0);
  REQUIRE(::pipe(to_child) == 0);
  // LMDB must not be opened twice in one process: the reader is a child.
  // Exit codes say which check failed.
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    char c = 0;
    Store::Options ro;
    ro.read_only = true;
    auto r = Store::open(dir, ro);
    if (!r.is_ok()) ::_exit(10);
    auto seqs_now = [&]() -> Result<std::vector<uint64_t>> {
      ROAM_ASSIGN(ReadTxn txn, (*r)->begin_read());
      ROAM_ASSIGN(auto seqs, oplog::InodeRecords::open(txn, 2));
      std::vector<uint64_t> out;
      for (;;) {
        ROAM_ASSIGN(auto seq, seqs.next());
        if (!seq) return out;
        out.push_back(*seq);
      }
    };
    auto before = seqs_now();
    if (!before.is_ok() || *before != seqs_in(index, 2)) ::_exit(11);
    if (::write(to_parent[1], "r", 1) != 1 || ::read(to_child[0], &c, 1) != 1) ::_exit(12);
    auto after = seqs_now();  // the table it read is gone: not "no records"
    if (after.is_ok() || after.status().err() != ESTALE) ::_exit(13);
    if (after.status().message().find("open it again") == std::string::npos) ::_exit(14);
    ::_exit(0);
  }
  char c = 0;
  REQUIRE(::read(to_parent[0], &c, 1) == 1);
  must(Store::open(dir, {})).reset();  // upgrades
  REQUIRE(::write(to_child[1], "w", 1) == 1);
  int wstatus = 0;
  REQUIRE(::waitpid(pid, &wstatus, 0) == pid);
  REQUIRE(WIFEXITED(wstatus));
  CHECK(WEXITSTATUS(wstatus) == 0);
  for (int fd : {to_parent[0], to_parent[1], to_child[0], to_child[1]}) ::close(fd);
  CHECK(read_file(dir + "/FORMAT") == "roamdisk store\nversion " + std::to_string(kFormatVersion) + "\n");
}

TEST_CASE("a format-2 store whose index is not a sorted-duplicates table is corrupt", "[store][upgrade]") {
  TempDir t;
  const std::string dir = t.sub("s");
  REQUIRE_OK(Store::create(dir));
  {
    lmdb::Env env = roam::testing::open_raw_env(dir);
    lmdb::Txn txn = must(lmdb::Txn::begin(env, false));
    REQUIRE_OK(txn.drop(must(txn.open_dbi("log_by_ino", 0))));
    MDB_dbi plain = must(txn.open_dbi("log_by_ino", MDB_CREATE));
    REQUIRE_OK(txn.put(plain, codec::be64(2), codec::be64(1)));
    REQUIRE_OK(txn.commit());
  }
  for (bool ro : {true, false}) {
    Store::Options o;
    o.read_only = ro;
    auto r = Store::open(dir, o);
    INFO("read_only " << ro);
    REQUIRE_ERR(r, EIO);
    require_message_has(r.status(), "log_by_ino");
  }
}

// ---------------------------------------------------------------- transactions

TEST_CASE("a WriteTxn that is not committed leaves nothing behind", "[store]") {
  TempDir t;
  auto store = make_store(t);
  Counters before;
  {
    WriteTxn w = must(store->begin_write());
    before = w.counters();
    REQUIRE_OK(w.put_inode(file_inode(50, 1, "ghost")));
    REQUIRE_OK(w.put_dirent(1, "ghost", Dirent{50, S_IFREG}));
    REQUIRE_OK(w.put_xattr(50, "user.a", "1"));
    auto blob = must(w.add_blob({1, 0}, 10, 0));
    std::vector<Extent> replaced;
    REQUIRE_OK(w.remap(50, 0, 10, Extent{0, blob, 0, 10}, replaced));
    w.counters().next_ino += 5;
    w.counters().next_blob += 5;
    // visible inside the transaction itself
    CHECK(must(w.get_inode(50)).has_value());
  }  // destroyed: aborted
  ReadTxn r = must(store->begin_read());
  CHECK_FALSE(must(r.get_inode(50)).has_value());
  CHECK_FALSE(must(r.get_dirent(1, "ghost")).has_value());
  CHECK_FALSE(must(r.get_xattr(50, "user.a")).has_value());
  CHECK(all_extents(r, 50).empty());
  CHECK(all_blob_refs(r).empty());
  // The writer lock was released and the counters were not advanced.
  WriteTxn w2 = must(store->begin_write());
  CHECK(w2.counters() == before);
}

TEST_CASE("committed changes survive reopening and counters resume after the last keys", "[store]") {
  TempDir t;
  const std::string dir = t.sub("s");
  REQUIRE_OK(Store::create(dir));
  {
    auto store = must(Store::open(dir, {}));
    WriteTxn w = must(store->begin_write());
    REQUIRE_OK(w.put_inode(file_inode(7, 1, "f")));
    REQUIRE_OK(w.put_dirent(1, "f", Dirent{7, S_IFREG}));
    must(w.add_blob({1, 0}, 1, 0));
    must(w.add_blob({1, 1}, 1, 0));
    REQUIRE_OK(w.commit());
  }
  auto store = must(Store::open(dir, {}));
  WriteTxn w = must(store->begin_write());
  // Counters are not stored: they are one past the last inode and blob.
  CHECK(w.counters().next_ino == 8);
  CHECK(w.counters().next_blob == 3);
  CHECK(must(w.get_dirent(1, "f"))->ino == 7);
}

TEST_CASE("begin_write waits for the other writer", "[store]") {
  TempDir t;
  auto store = make_store(t);
  std::atomic<bool> second_started{false}, second_done{false};
  std::thread other;
  {
    WriteTxn w = must(store->begin_write());
    other = std::thread([&] {
      second_started = true;
      auto w2 = store->begin_write();
      // The first transaction's inode is visible: it committed before we got in.
      second_done = w2.is_ok() && w2->get_inode(60).is_ok() && w2->get_inode(60)->has_value();
    });
    while (!second_started) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK_FALSE(second_done);
    REQUIRE_OK(w.put_inode(file_inode(60, 1, "x")));
    REQUIRE_OK(w.commit());
  }
  other.join();
  CHECK(second_done);
}

// ---------------------------------------------------------------- tables

TEST_CASE("directory listing, xattrs, links and paths", "[store]") {
  TempDir t;
  auto store = make_store(t);
  {
    WriteTxn w = must(store->begin_write());
    Inode d = file_inode(2, 1, "dir");
    d.mode = S_IFDIR | 0755;
    REQUIRE_OK(w.put_inode(d));
    REQUIRE_OK(w.put_dirent(1, "dir", Dirent{2, S_IFDIR}));
    for (int i = 0; i < 10; ++i) {
      std::string name = "f" + std::to_string(i);
      REQUIRE_OK(w.put_inode(file_inode(10 + i, 2, name)));
      REQUIRE_OK(w.put_dirent(2, name, Dirent{static_cast<uint64_t>(10 + i), S_IFREG}));
    }
    REQUIRE_OK(w.put_xattr(10, "user.b", "2"));
    REQUIRE_OK(w.put_xattr(10, "user.a", std::string("\0", 1)));
    REQUIRE_OK(w.put_xattr(11, "user.other", "x"));
    REQUIRE_OK(w.put_link(10, 1, "alias"));
    REQUIRE_OK(w.commit());
  }
  ReadTxn r = must(store->begin_read());
  auto page1 = must(r.list_dir(2, "", 4));
  REQUIRE(page1.size() == 4);
  CHECK(page1[0].first == "f0");
  CHECK(page1[3].first == "f3");
  auto page2 = must(r.list_dir(2, page1.back().first, 100));
  REQUIRE(page2.size() == 6);
  CHECK(page2[0].first == "f4");
  CHECK(page2[0].second.ino == 14);
  CHECK(must(r.list_dir(2, "f9", 100)).empty());
  // other directories' entries never leak in
  auto root = must(r.list_dir(1, "", 100));
  REQUIRE(root.size() == 1);
  CHECK(root[0].first == "dir");
  CHECK_FALSE(must(r.dir_is_empty(2)));
  CHECK(must(r.dir_is_empty(10)));

  CHECK(must(r.list_xattrs(10)) == std::vector<std::string>{"user.a", "user.b"});
  CHECK(*must(r.get_xattr(10, "user.a")) == std::string("\0", 1));
  CHECK_FALSE(must(r.get_xattr(10, "user.other")).has_value());

  auto link = must(r.any_link(10));
  REQUIRE(link.has_value());
  CHECK(link->first == 1);
  CHECK(link->second == "alias");
  CHECK_FALSE(must(r.any_link(11)).has_value());

  CHECK(must(r.path_of(15)) == "/dir/f5");
  CHECK(must(r.path_of(2)) == "/dir");
  REQUIRE_ERR(r.inode(999), ENOENT);
  CHECK_FALSE(must(r.get_inode(999)).has_value());
}

// ---------------------------------------------------------------- extents

TEST_CASE("extents_in edge cases", "[store]") {
  TempDir t;
  auto store = make_store(t);
  {
    WriteTxn w = must(store->begin_write());
    std::vector<Extent> replaced;
    auto put = [&](uint64_t ino, uint64_t off, uint32_t len) {
      uint64_t b = must(w.add_blob({1, 0}, len, 0));
      REQUIRE_OK(w.remap(ino, off, len, Extent{off, b, 0, len}, replaced));
    };
    put(9, 0, 5000);       // neighbour below
    put(10, 100, 100);     // [100, 200)
    put(10, 300, 100);     // [300, 400)
    put(10, 1ull << 33, 10);
    put(11, 0, 1000);      // neighbour above
    REQUIRE(replaced.empty());
    REQUIRE_OK(w.commit());
  }
  ReadTxn r = must(store->begin_read());
  auto offsets = [&](uint64_t ino, uint64_t off, uint64_t len) {
    std::vector<uint64_t> out;
    for (const Extent& e : must(r.extents_in(ino, off, len))) out.push_back(e.file_offset);
    return out;
  };
  using V = std::vector<uint64_t>;
  CHECK(offsets(10, 0, UINT64_MAX) == V{100, 300, 1ull << 33});
  CHECK(offsets(10, 150, 10) == V{100});           // starts and ends inside one extent
  CHECK(offsets(10, 150, 200) == V{100, 300});     // starts inside, reaches the next
  CHECK(offsets(10, 199, 1) == V{100});            // last byte
  CHECK(offsets(10, 200, 100) == V{});             // exactly the hole between
  CHECK(offsets(10, 0, 100) == V{});               // ends where the first starts
  CHECK(offsets(10, 0, 101) == V{100});
  CHECK(offsets(10, 400, 1000) == V{});            // after the last small one
  CHECK(offsets(10, 150, 0) == V{});               // empty range
  CHECK(offsets(10, 0, 0) == V{});
  CHECK(offsets(10, (1ull << 33) + 5, UINT64_MAX) == V{1ull << 33});  // range end overflows
  CHECK(offsets(10, (1ull << 33) + 10, UINT64_MAX) == V{});
  // Inodes without extents, next to inodes with extents that would overlap
  // numerically: nothing from the neighbours.
  CHECK(offsets(8, 0, UINT64_MAX) == V{});
  CHECK(offsets(12, 0, UINT64_MAX) == V{});
  CHECK(offsets(10, 0, 50) == V{});               // ino 9's [0,5000) must not show up
  CHECK(offsets(11, 500, 10) == V{0});
  CHECK(offsets(9, 4999, 1) == V{0});
  // the extent returned is whole, not trimmed to the range
  auto e = must(r.extents_in(10, 150, 10));
  REQUIRE(e.size() == 1);
  CHECK(e[0].length == 100);
  CHECK(e[0].blob_offset == 0);
}

TEST_CASE("remap splits, trims and replaces extents and keeps blob references right", "[store]") {
  TempDir t;
  auto store = make_store(t);
  const uint64_t ino = 10;
  std::vector<Extent> all_replaced;  // every piece handed out so far
  uint64_t A, B, C;
  {
    WriteTxn w = must(store->begin_write());
    // An unrelated inode's extents must be untouched throughout.
    uint64_t other = must(w.add_blob({1, 0}, 1000, 0));
    std::vector<Extent> replaced;
    REQUIRE_OK(w.remap(11, 0, 1000, Extent{0, other, 0, 1000}, replaced));
    A = must(w.add_blob({1, 0}, 100, 0));
    B = must(w.add_blob({1, 100}, 200, 0));
    C = must(w.add_blob({1, 300}, 100, 0));
    REQUIRE_OK(w.remap(ino, 0, 100, Extent{0, A, 0, 100}, replaced));
    REQUIRE_OK(w.remap(ino, 100, 200, Extent{100, B, 0, 200}, replaced));
    REQUIRE_OK(w.remap(ino, 300, 100, Extent{300, C, 0, 100}, replaced));
    CHECK(replaced.empty());
    REQUIRE_OK(w.commit());
  }
  check_refcounts(*store, all_replaced);

  SECTION("overwrite the middle of one extent") {
    WriteTxn w = must(store->begin_write());
    uint64_t D = must(w.add_blob({1, 400}, 50, 0));
    std::vector<Extent> replaced;
    REQUIRE_OK(w.remap(ino, 150, 50, Extent{150, D, 0, 50}, replaced));
    CHECK(replaced == std::vector<Extent>{{150, B, 50, 50}});
    CHECK(all_extents(w, ino) == std::vector<Extent>{
                                     {0, A, 0, 100}, {100, B, 0, 50}, {150, D, 0, 50}, {200, B, 100, 100}, {300, C, 0, 100}});
    REQUIRE_OK(w.commit());
    all_replaced.insert(all_replaced.end(), replaced.begin(), replaced.end());
    check_refcounts(*store, all_replaced);
    {
      ReadTxn r = must(store->begin_read());
      CHECK(must(r.blob(B)).refs == 3);  // head, tail, and the replaced middle
      CHECK(must(r.blob(D)).refs == 1);
    }

    // then one write spanning all of them
    WriteTxn w2 = must(store->begin_write());
    uint64_t E = must(w2.add_blob({1, 450}, 300, 0));
    std::vector<Extent> replaced2;
    REQUIRE_OK(w2.remap(ino, 50, 300, Extent{50, E, 0, 300}, replaced2));
    CHECK(replaced2 == std::vector<Extent>{
                           {50, A, 50, 50}, {100, B, 0, 50}, {150, D, 0, 50}, {200, B, 100, 100}, {300, C, 0, 50}});
    CHECK(all_extents(w2, ino) == std::vector<Extent>{{0, A, 0, 50}, {50, E, 0, 300}, {350, C, 50, 50}});
    REQUIRE_OK(w2.commit());
    all_replaced.insert(all_replaced.end(), replaced2.begin(), replaced2.end());
    check_refcounts(*store, all_replaced);
    ReadTxn r = must(store->begin_read());
    CHECK(must(r.blob(A)).refs == 2);
    CHECK(must(r.blob(B)).refs == 3);
    CHECK(must(r.blob(C)).refs == 2);
    CHECK(must(r.blob(D)).refs == 1);
    CHECK(must(r.blob(E)).refs == 1);
  }

  SECTION("overwrite spanning several extents exactly") {
    WriteTxn w = must(store->begin_write());
    uint64_t E = must(w.add_blob({1, 400}, 400, 0));
    std::vector<Extent> replaced;
    REQUIRE_OK(w.remap(ino, 0, 400, Extent{0, E, 0, 400}, replaced));
    CHECK(replaced == std::vector<Extent>{{0, A, 0, 100}, {100, B, 0, 200}, {300, C, 0, 100}});
    CHECK(all_extents(w, ino) == std::vector<Extent>{{0, E, 0, 400}});
    REQUIRE_OK(w.commit());
    all_replaced.insert(all_replaced.end(), replaced.begin(), replaced.end());
    check_refcounts(*store, all_replaced);
  }

  SECTION("punch a hole") {
    WriteTxn w = must(store->begin_write());
    std::vector<Extent> replaced;
    REQUIRE_OK(w.remap(ino, 90, 220, std::nullopt, replaced));
    CHECK(replaced == std::vector<Extent>{{90, A, 90, 10}, {100, B, 0, 200}, {300, C, 0, 10}});
    CHECK(all_extents(w, ino) == std::vector<Extent>{{0, A, 0, 90}, {310, C, 10, 90}});
    REQUIRE_OK(w.commit());
    all_replaced.insert(all_replaced.end(), replaced.begin(), replaced.end());
    check_refcounts(*store, all_replaced);
  }

  SECTION("a hole over a hole replaces nothing") {
    WriteTxn w = must(store->begin_write());
    std::vector<Extent> replaced;
    REQUIRE_OK(w.remap(ino, 400, 1000, std::nullopt, replaced));
    CHECK(replaced.empty());
    CHECK(all_extents(w, ino).size() == 3);
    REQUIRE_OK(w.commit());
    check_refcounts(*store, all_replaced);
  }

  SECTION("an aborted remap changes no reference count") {
    {
      WriteTxn w = must(store->begin_write());
      std::vector<Extent> replaced;
      REQUIRE_OK(w.remap(ino, 50, 300, std::nullopt, replaced));
    }
    check_refcounts(*store, all_replaced);
    ReadTxn r = must(store->begin_read());
    CHECK(all_extents(r, ino).size() == 3);
  }

  // Never anything of inode 11 in any case.
  ReadTxn r = must(store->begin_read());
  auto other = all_extents(r, 11);
  REQUIRE(other.size() == 1);
  CHECK(other[0].length == 1000);
}

TEST_CASE("random remaps agree with a byte model", "[store]") {
  TempDir t;
  auto store = make_store(t);
  constexpr uint64_t kIno = 5, kSpan = 3000;
  struct Src {
    uint64_t blob = 0;  // 0: hole
    uint64_t at = 0;    // byte index in the blob
  };
  std::vector<Src> model(kSpan);
  std::vector<Extent> all_replaced;
  std::mt19937_64 rng(41);
  for (int step = 0; step < 300; ++step) {
    WriteTxn w = must(store->begin_write());
    uint64_t off = rng() % kSpan;
    uint64_t len = 1 + rng() % std::min<uint64_t>(kSpan - off, 700);
    std::optional<Extent> repl;
    uint64_t blob = 0;
    uint32_t boff = 0;
    if (rng() % 4) {
      boff = static_cast<uint32_t>(rng() % 50);
      blob = must(w.add_blob({1, 0}, static_cast<uint32_t>(len + boff), 0));
      repl = Extent{off, blob, boff, static_cast<uint32_t>(len)};
    }
    // What the model says is mapped there now.
    std::vector<Src> before(model.begin() + static_cast<long>(off), model.begin() + static_cast<long>(off + len));
    std::vector<Extent> replaced;
    REQUIRE_OK(w.remap(kIno, off, len, repl, replaced));
    // replaced pieces cover exactly the mapped bytes of the range
    std::vector<Src> got(len);
    uint64_t prev_end = off;
    for (const Extent& e : replaced) {
      REQUIRE(e.file_offset >= prev_end);
      REQUIRE(e.end() <= off + len);
      prev_end = e.end();
      for (uint64_t k = 0; k < e.length; ++k) got[e.file_offset - off + k] = {e.blob, e.blob_offset + k};
    }
    for (uint64_t k = 0; k < len; ++k) {
      REQUIRE(got[k].blob == before[k].blob);
      REQUIRE(got[k].at == before[k].at);
    }
    if (rng() % 5 == 0) continue;  // abort this one: the model stays as it was
    REQUIRE_OK(w.commit());
    for (uint64_t k = 0; k < len; ++k) model[off + k] = repl ? Src{blob, boff + k} : Src{};
    all_replaced.insert(all_replaced.end(), replaced.begin(), replaced.end());
    if (step % 7 == 0) {
      check_refcounts(*store, all_replaced);
    }
    // rebuild from the extents table and compare
    ReadTxn r = must(store->begin_read());
    std::vector<Src> seen(kSpan);
    uint64_t last_end = 0;
    for (const Extent& e : all_extents(r, kIno)) {
      REQUIRE(e.file_offset >= last_end);  // non-overlapping, ordered
      REQUIRE(e.length > 0);
      last_end = e.end();
      for (uint64_t k = 0; k < e.length; ++k) seen[e.file_offset + k] = {e.blob, e.blob_offset + k};
    }
    for (uint64_t k = 0; k < kSpan; ++k) {
      INFO("step " << step << " byte " << k);
      REQUIRE(seen[k].blob == model[k].blob);
      REQUIRE(seen[k].at == model[k].at);
    }
  }
  check_refcounts(*store, all_replaced);
}

TEST_CASE("a writable open upgrades a format-3 or -4 store by its FORMAT alone; a pure read-only open leaves it",
          "[store][upgrade]") {
  // Formats 3, 4 and 5 share LMDB's tables and the WAL; 4 added a record's
  // desktop (head bit 16), 5 the copy record (op kind 16). A store of either
  // reads as it is.
  TempDir t;
  const std::string dir = t.sub("s");
  REQUIRE_OK(Store::create(dir));
  {
    auto store = must(Store::open(dir, {}));
    WriteTxn txn = must(store->begin_write());
    OpRecord rec;
    rec.kind = OpKind::kWrite;
    rec.caller = {1000, 1000, 42, "sh", "R1"};
    rec.ino = 7;
    rec.path = "/a";
    REQUIRE_OK(oplog::append(txn, rec));
    REQUIRE_OK(txn.commit());
    REQUIRE_OK(store->sync());
  }
  const int old = GENERATE(3, 4);
  INFO("format " << old);
  write_file(dir + "/FORMAT", "roamdisk store\nversion " + std::to_string(old) + "\n");
  auto read_back = [&](Store& s) {
    ReadTxn txn = must(s.begin_read());
    auto rec = must(oplog::get(txn, 1));
    REQUIRE(rec);
    CHECK(rec->caller.desktop == "R1");
    CHECK(rec->path == "/a");
  };
  {
    Store::Options ro;
    ro.read_only = true;
    ro.replay_wal_for_reader = false;  // else a writable open first replays the WAL, and upgrades
    auto store = must(Store::open(dir, ro));
    read_back(*store);
  }
  CHECK(read_file(dir + "/FORMAT") == "roamdisk store\nversion " + std::to_string(old) + "\n");
  auto store = must(Store::open(dir, {}));
  CHECK(read_file(dir + "/FORMAT") == "roamdisk store\nversion " + std::to_string(kFormatVersion) + "\n");
  read_back(*store);
}
