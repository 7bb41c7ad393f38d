// fusefs/history: past views and restore, driven through the engine (no FUSE).
// The main test applies random operations, snapshots the whole tree at
// checkpoints, and restores every checkpoint in turn (whole disk, subtrees,
// copies, undo) comparing exactly against the snapshot.
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <map>
#include <random>
#include <set>

#include "fusefs/engine/check.h"
#include "fusefs/engine/fs.h"
#include "fusefs/gc/gc.h"
#include "fusefs/history/moment.h"
#include "fusefs/oplog/past_view.h"
#include "fusefs/history/restore.h"
#include "fusefs/oplog/oplog.h"
#include "tests/unit/engine_env.h"

using namespace roam;
using roam::testing::must;
using roam::testing::TempDir;

namespace {

const Caller kCaller = roam::testing::kTestCaller;

struct Env : roam::testing::EngineEnv {
  RestoreResult restore(const std::string& path, uint64_t seq, std::optional<std::string> to = std::nullopt,
                        bool dry_run = false) {
    RestoreRequest req{path, seq, std::move(to), dry_run, "test"};
    return must(roam::restore(*store, kCaller, req));
  }
};


// Everything restore promises to bring back, for one name.
struct Entry {
  uint32_t mode = 0, uid = 0, gid = 0, nlink = 0;
  int64_t mtime = 0;
  std::string content;  // file bytes or symlink target
  std::map<std::string, std::string> xattrs;
  std::string link_group;  // first path of the same inode (hard-link structure)
  bool operator==(const Entry&) const = default;
};
using Tree = std::map<std::string, Entry>;

std::string show(const Tree& t) {
  std::string s;
  for (const auto& [p, e] : t)
    s += p + " mode=" + std::to_string(e.mode) + " uid=" + std::to_string(e.uid) + " n=" + std::to_string(e.nlink) +
         " size=" + std::to_string(e.content.size()) + " x=" + std::to_string(e.xattrs.size()) + " link=" +
         e.link_group + "\n";
  return s;
}

void dump_dir(Fs& fs, uint64_t dir, const std::string& path, Tree& out, std::map<uint64_t, std::string>& seen) {
  auto entries = must(fs.readdir(dir, "", SIZE_MAX));
  for (const auto& [name, d] : entries) {
    const std::string p = path == "/" ? "/" + name : path + "/" + name;
    const Inode i = must(fs.getattr(d.ino));
    Entry e{i.mode, i.uid, i.gid, i.nlink, i.mtime.ns(), "", {}, ""};
    auto [it, first] = seen.emplace(d.ino, p);
    e.link_group = it->second;
    if (S_ISREG(i.mode)) {
      e.content.assign(i.size, '\0');
      REQUIRE(must(fs.read(d.ino, 0, i.size, e.content.data())) == i.size);
    }
    if (S_ISLNK(i.mode)) e.content = must(fs.readlink(d.ino));
    for (const auto& x : must(fs.listxattr(d.ino))) e.xattrs[x] = must(fs.getxattr(d.ino, x));
    out[p] = e;
    if (S_ISDIR(i.mode) && first) dump_dir(fs, d.ino, p, out, seen);
  }
}

Tree dump(Fs& fs, const std::string& under = "/") {
  Tree t;
  std::map<uint64_t, std::string> seen;
  uint64_t ino = kRootIno;
  if (under != "/") ino = must(fs.lookup(kRootIno, under.substr(1))).ino;  // one level is enough here
  dump_dir(fs, ino, "/", t, seen);
  return t;
}

// Random operations over a small namespace, so names collide and get reused.
class Workload {
 public:
  Workload(Env& e, uint64_t seed) : e_(e), rng_(seed) {}

  void step() {
    auto paths = all_paths();
    const std::string dir = pick_dir(paths);
    const uint64_t dino = ino(dir);
    const std::string name = "n" + std::to_string(rng_() % 6);
    const std::string victim = paths.empty() ? "" : paths[rng_() % paths.size()];
    switch (rng_() % 12) {
      case 0: (void)e_.fs->mknod(kCaller, dino, name, S_IFREG | 0644, 0, OpKind::kCreate); break;
      case 1: (void)e_.fs->mkdir(kCaller, dino, name, 0755); break;
      case 2: (void)e_.fs->symlink(kCaller, dino, name, "target-" + std::to_string(rng_() % 100)); break;
      case 3:
      case 4: write(victim); break;
      case 5: if (!victim.empty()) { auto [p, n] = split_path(victim); (void)e_.fs->unlink(kCaller, ino(p), n); } break;
      case 6: if (!victim.empty()) { auto [p, n] = split_path(victim); (void)e_.fs->rmdir(kCaller, ino(p), n); } break;
      case 7:
        if (!victim.empty()) {
          auto [p, n] = split_path(victim);
          (void)e_.fs->rename(kCaller, ino(p), n, dino, name, rng_() % 4 == 0 ? RENAME_EXCHANGE : 0);
        }
        break;
      case 8: if (!victim.empty()) (void)e_.fs->link(kCaller, ino(victim), dino, name); break;
      case 9: setattr(victim); break;
      case 10:
        if (!victim.empty()) (void)e_.fs->setxattr(kCaller, ino(victim), "user.k" + std::to_string(rng_() % 3),
                                                     std::string(rng_() % 20, 'x'), 0);
        break;
      case 11: if (!victim.empty()) (void)e_.fs->removexattr(kCaller, ino(victim), "user.k" + std::to_string(rng_() % 3)); break;
    }
  }

 private:
  std::vector<std::string> all_paths() {
    std::vector<std::string> out;
    for (const auto& [p, en] : dump(*e_.fs)) out.push_back(p);
    return out;
  }
  std::string pick_dir(const std::vector<std::string>& paths) {
    std::vector<std::string> dirs{"/"};
    for (const auto& p : paths)
      if (S_ISDIR(must(e_.fs->getattr(ino(p))).mode)) dirs.push_back(p);
    return dirs[rng_() % dirs.size()];
  }
  uint64_t ino(const std::string& path) {
    uint64_t i = kRootIno;
    size_t pos = 1;
    while (pos < path.size()) {
      size_t end = std::min(path.find('/', pos), path.size());
      i = must(e_.fs->lookup(i, path.substr(pos, end - pos))).ino;
      pos = end + 1;
    }
    return i;
  }
  void write(const std::string& p) {
    if (p.empty()) return;
    const uint64_t i = ino(p);
    if (!S_ISREG(must(e_.fs->getattr(i)).mode)) return;
    if (rng_() % 4 == 0) {
      (void)e_.fs->fallocate(kCaller, i, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, rng_() % 300000, rng_() % 200000);
      return;
    }
    std::string data(rng_() % 200000, static_cast<char>('a' + rng_() % 26));
    (void)e_.fs->write(kCaller, i, rng_() % 300000, data);
  }
  void setattr(const std::string& p) {
    if (p.empty()) return;
    SetattrArgs a;
    switch (rng_() % 4) {
      case 0: a.mask = kSetMode, a.mode = static_cast<uint32_t>(rng_() % 0777); break;
      case 1: a.mask = kSetUid | kSetGid, a.uid = static_cast<uint32_t>(rng_() % 3), a.gid = 7; break;
      case 2: a.mask = kSetMtime, a.mtime = Timespec{static_cast<int64_t>(rng_() % 100000), 5}; break;
      case 3: a.mask = kSetSize, a.size = rng_() % 400000; break;
    }
    const uint64_t i = ino(p);
    if ((a.mask & kSetSize) && !S_ISREG(must(e_.fs->getattr(i)).mode)) return;
    (void)e_.fs->setattr(kCaller, i, a);
  }

  Env& e_;
  std::mt19937_64 rng_;
};

using Checkpoints = std::vector<std::pair<uint64_t, Tree>>;  // (seq, the tree after it)

// `rounds` rounds of 40 random operations, with the tree after each.
void run_rounds(Env& e, Workload& w, int rounds, Checkpoints& out) {
  for (int round = 0; round < rounds; ++round) {
    for (int i = 0; i < 40; ++i) w.step();
    out.emplace_back(e.last_seq(), dump(*e.fs));
  }
}

}  // namespace

TEST_CASE("restoring the whole disk brings back every checkpoint exactly, and restores undo", "[restore]") {
  const uint64_t seed = roam::testing::env_seed("ROAMDISK_SEED");
  INFO("seed " << seed);
  Env e;
  Workload w(e, seed);
  Checkpoints checkpoints{{0, dump(*e.fs)}};
  run_rounds(e, w, 8, checkpoints);
  std::mt19937_64 rng(seed);
  std::shuffle(checkpoints.begin(), checkpoints.end(), rng);
  for (const auto& [seq, tree] : checkpoints) {
    INFO("checkpoint after op " << seq);
    const uint64_t before = e.last_seq();
    const Tree now = dump(*e.fs);
    RestoreResult r = e.restore("/", seq);
    std::string listed;
    for (const auto& c : r.changes) listed += static_cast<char>(c.kind) + c.path + " " + c.what + "\n";
    INFO("changes:\n" << listed);
    CHECK(r.changes.empty() == (now == tree));
    const Tree got = dump(*e.fs);
    INFO("want:\n" << show(tree) << "got:\n" << show(got));
    REQUIRE(got == tree);
    e.check();
    if (r.record) {  // undo: back to just before the restore
      e.restore("/", before);
      REQUIRE(dump(*e.fs) == now);
      e.restore("/", seq);  // and again
      REQUIRE(dump(*e.fs) == tree);
    }
    for (int i = 0; i < 10; ++i) w.step();  // history keeps growing between restores
  }
  e.check();
}

TEST_CASE("restoring a subtree, in place and as a copy, leaves the rest alone", "[restore]") {
  Env e;
  const Inode a = must(e.fs->mkdir(kCaller, kRootIno, "a", 0755));
  const Inode f = must(e.fs->mknod(kCaller, a.ino, "f", S_IFREG | 0644, 0, OpKind::kCreate));
  must(e.fs->write(kCaller, f.ino, 0, std::string(300000, 'o')));
  const Inode keep = must(e.fs->mknod(kCaller, kRootIno, "keep", S_IFREG | 0600, 0, OpKind::kCreate));
  must(e.fs->link(kCaller, f.ino, a.ino, "f2"));
  const uint64_t seq = e.last_seq();
  const Tree then = dump(*e.fs);

  must(e.fs->write(kCaller, f.ino, 1000, "NEW"));
  REQUIRE_OK(e.fs->unlink(kCaller, a.ino, "f2"));
  must(e.fs->mknod(kCaller, a.ino, "later", S_IFREG | 0644, 0, OpKind::kCreate));
  must(e.fs->write(kCaller, keep.ino, 0, "outside"));
  const Tree outside_before = dump(*e.fs);

  SECTION("in place") {
    RestoreResult dry = e.restore("/a", seq, std::nullopt, true);
    CHECK_FALSE(dry.record);
    CHECK(dump(*e.fs) == outside_before);  // a dry run changes nothing
    std::set<std::string> listed;
    for (const auto& c : dry.changes) listed.insert(std::string(1, static_cast<char>(c.kind)) + c.path);
    CHECK(listed.count("~/a/f"));
    CHECK(listed.count("+/a/f2"));
    CHECK(listed.count("-/a/later"));

    RestoreResult r = e.restore("/a", seq);
    REQUIRE(r.record);
    CHECK(r.record->kind == OpKind::kRestore);
    const Tree now = dump(*e.fs);
    CHECK(now.at("/a/f") == then.at("/a/f"));
    CHECK(now.at("/a/f2").link_group == "/a/f");  // a hard link again
    CHECK(now.count("/a/later") == 0);
    CHECK(now.at("/keep").content == "outside");  // untouched
    // Its data changed, so it comes back as a new inode (the kernel, with the
    // writeback cache, would keep the old size); the directory stays itself.
    CHECK(must(e.fs->lookup(a.ino, "f")).ino != f.ino);
    CHECK(must(e.fs->lookup(kRootIno, "a")).ino == a.ino);
  }
  SECTION("as a copy") {
    RestoreResult r = e.restore("/a", seq, "/a-copy");
    REQUIRE(r.record);
    const Tree now = dump(*e.fs);
    CHECK(now.at("/a-copy/f").content == then.at("/a/f").content);
    CHECK(now.at("/a-copy/f2").link_group == "/a-copy/f");
    CHECK(now.at("/a/f").content != then.at("/a/f").content);  // the live one is as it was
    CHECK(now.count("/a/later") == 1);
    REQUIRE_ERR(roam::restore(*e.store, kCaller, {"/a", seq, "/a-copy", false, "t"}), EEXIST);
  }
  e.check();
}

TEST_CASE("restore errors change nothing", "[restore]") {
  Env e;
  must(e.fs->mkdir(kCaller, kRootIno, "d", 0755));
  const uint64_t seq = e.last_seq();
  must(e.fs->mknod(kCaller, kRootIno, "late", S_IFREG | 0644, 0, OpKind::kCreate));
  const uint64_t records = e.last_seq();
  CHECK_ERR(roam::restore(*e.store, kCaller, {"/never", seq, std::nullopt, false, "t"}), ENOENT);
  CHECK_ERR(roam::restore(*e.store, kCaller, {"/late", seq, "/late-copy", false, "t"}), ENOENT);
  CHECK_ERR(roam::restore(*e.store, kCaller, {"/nope/x", seq, std::nullopt, false, "t"}), ENOENT);
  CHECK_ERR(roam::restore(*e.store, kCaller, {"/d", seq, "/gone/x", false, "t"}), ENOENT);
  CHECK(e.last_seq() == records);
  // A path that did not exist then goes away (kept in history): how a restore
  // that brought something back is undone.
  RestoreResult gone = e.restore("/late", seq);
  REQUIRE(gone.changes.size() == 1);
  CHECK(gone.changes[0].kind == RestoreChange::Kind::kGone);
  CHECK_ERR(e.fs->lookup(kRootIno, "late"), ENOENT);
  e.restore("/late", records);
  CHECK(must(e.fs->lookup(kRootIno, "late")).nlink == 1);
  e.check();
  CHECK(must(normalize_disk_path("a//b/")) == "/a/b");
  CHECK(must(normalize_disk_path("")) == "/");
  CHECK_ERR(normalize_disk_path("/a/../b"), EINVAL);
}

TEST_CASE("a 1 GiB file comes back by remapping, without copying data", "[restore]") {
  Env e;
  const Inode f = must(e.fs->mknod(kCaller, kRootIno, "big", S_IFREG | 0644, 0, OpKind::kCreate));
  const std::string chunk(1 << 20, 'b');
  for (uint64_t off = 0; off < (64ull << 20); off += chunk.size()) must(e.fs->write(kCaller, f.ino, off, chunk));
  const uint64_t seq = e.last_seq();
  must(e.fs->write(kCaller, f.ino, 5000, "overwritten"));
  SetattrArgs t;
  t.mask = kSetSize;
  t.size = 10;
  must(e.fs->setattr(kCaller, f.ino, t));
  const uint64_t seg_bytes_before = e.segment_bytes();
  RestoreResult r = e.restore("/big", seq);
  REQUIRE(r.record);
  CHECK(e.segment_bytes() == seg_bytes_before);  // no data written
  const Inode back = must(e.fs->lookup(kRootIno, "big"));
  CHECK(back.size == (64ull << 20));
  std::string got(100, '\0');
  REQUIRE(must(e.fs->read(back.ino, 4990, 100, got.data())) == 100);
  CHECK(got == std::string(100, 'b'));
  e.check();
}

TEST_CASE("after GC drops old history, every retained checkpoint still restores exactly", "[restore][gc]") {
  const uint64_t seed = roam::testing::env_seed("ROAMDISK_SEED");
  INFO("seed " << seed);
  Env e;
  Workload w(e, seed);
  Checkpoints checkpoints;
  run_rounds(e, w, 6, checkpoints);
  // Retention keeps 1 hour; "now" is chosen so that checkpoint 3 is the oldest kept.
  const auto& [kept_seq, kept_tree] = checkpoints[3];
  int64_t kept_ts = 0;
  {
    ReadTxn txn = must(e.store->begin_read());
    kept_ts = must(oplog::get(txn, kept_seq))->ts_ns;
  }
  constexpr int64_t kHour = 3600LL * 1000000000LL;
  {
    WriteTxn txn = must(e.store->begin_write());
    REQUIRE_OK(save_retention(txn, {kHour, 0}));
    REQUIRE_OK(txn.commit());
  }
  GcOptions o;
  o.now_ns = kept_ts + kHour;
  o.batch = 5;
  GcReport r = must(collect_garbage(*e.store, o));
  CHECK(r.records_dropped > 0);
  e.check();
  for (size_t k = 0; k < checkpoints.size(); ++k) {
    const auto& [seq, tree] = checkpoints[k];
    INFO("checkpoint " << k << " after op " << seq);
    ReadTxn txn = must(e.store->begin_read());
    if (k < 3) {
      CHECK_ERR(moment_before_op(txn, seq + 1), ENOENT);  // its history is gone: refused, not guessed
      continue;
    }
    const uint64_t at = must(moment_before_op(txn, seq + 1)).seq;
    e.restore("/", at);
    REQUIRE(dump(*e.fs) == tree);
  }
  e.check();
}

TEST_CASE("a format-1 store: past views read-only, then restores after the upgrade, are exact", "[restore][upgrade]") {
  const uint64_t seed = roam::testing::env_seed("ROAMDISK_SEED");
  INFO("seed " << seed);
  Env e;
  Workload w(e, seed);
  Checkpoints checkpoints;
  run_rounds(e, w, 5, checkpoints);
  const Tree now = dump(*e.fs);
  auto past_views_exact = [&] {
    for (const auto& [seq, tree] : checkpoints) {
      INFO("after op " << seq);
      Fs past(*e.store, seq);
      REQUIRE(dump(past) == tree);
    }
    REQUIRE(dump(*e.fs) == now);
  };
  e.reopen(true, true);  // format 1, read-only: read through log_ino
  REQUIRE(e.store->dbis().v1_log_ino.has_value());
  past_views_exact();
  e.reopen(false);  // upgraded
  REQUIRE_FALSE(e.store->dbis().v1_log_ino.has_value());
  e.check();
  past_views_exact();
  for (size_t k = checkpoints.size(); k-- > 0;) {
    const auto& [seq, tree] = checkpoints[k];
    INFO("restore to after op " << seq);
    e.restore("/", seq);
    REQUIRE(dump(*e.fs) == tree);
  }
  e.check();
}
