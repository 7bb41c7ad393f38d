// fusefs/engine/fs.h: the filesystem engine driven directly, without FUSE.
#include "fusefs/engine/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>  // RENAME_NOREPLACE, RENAME_EXCHANGE
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <map>
#include <random>
#include <mutex>
#include <set>
#include <thread>

#include "fusefs/engine/check.h"
#include "fusefs/oplog/oplog.h"
#include "tests/unit/helpers.h"

using namespace roam;
using roam::testing::must;
using roam::testing::TempDir;

namespace {

constexpr uint64_t kGiB = 1ull << 30;
const Caller kCaller{1000, 1000, 4242, "tester"};

// A store in a temp dir and an engine over it; the commit hook collects the log.
struct FsEnv {
  TempDir tmp;
  std::unique_ptr<Store> store;
  std::unique_ptr<Fs> fs;
  std::vector<OpRecord> log;

  FsEnv() {
    REQUIRE_OK(Store::create(tmp.sub("store")));
    store = must(Store::open(tmp.sub("store"), {}));
    fs = std::make_unique<Fs>(*store);
    log.reserve(100000);  // references to records stay valid while tests add more
    fs->set_commit_hook([this](const OpRecord& r) { log.push_back(r); });
  }
  std::string store_dir() const { return tmp.sub("store"); }

  Inode create(uint64_t parent, std::string_view name, uint32_t mode = 0644, const Caller& c = kCaller) {
    return must(fs->mknod(c, parent, name, S_IFREG | mode, 0, OpKind::kCreate));
  }
  Inode mkdir(uint64_t parent, std::string_view name, uint32_t mode = 0755, const Caller& c = kCaller) {
    return must(fs->mkdir(c, parent, name, mode));
  }
  Inode write(uint64_t ino, uint64_t offset, std::string_view data) {
    return must(fs->write(kCaller, ino, offset, data));
  }
  std::string read(uint64_t ino, uint64_t offset, size_t size) {
    std::string buf(size, '\xAA');  // not zero: holes must be zeroed by read
    size_t n = must(fs->read(ino, offset, size, buf.data()));
    REQUIRE(n <= size);
    buf.resize(n);
    return buf;
  }
  std::string read_all(uint64_t ino) { return read(ino, 0, must(fs->getattr(ino)).size); }
  uint64_t ino_of(uint64_t parent, std::string_view name) { return must(fs->lookup(parent, name)).ino; }
  uint32_t nlink(uint64_t ino) { return must(fs->getattr(ino)).nlink; }
  std::string path_of(uint64_t ino) {
    ReadTxn txn = must(store->begin_read());
    return must(txn.path_of(ino));
  }
  Inode truncate(uint64_t ino, uint64_t size) {
    SetattrArgs a;
    a.mask = kSetSize;
    a.size = size;
    return must(fs->setattr(kCaller, ino, a));
  }
  void require_healthy(bool verify_data = true) {
    CheckReport rep = must(check_store(*store, verify_data));
    for (const auto& p : rep.problems) UNSCOPED_INFO("problem: " << p);
    REQUIRE(rep.ok());
  }
  const OpRecord& last() {
    REQUIRE_FALSE(log.empty());
    return log.back();
  }
};

bool has_inode_before(const OpRecord& r, uint64_t ino, bool existed) {
  for (const InodeBefore& b : r.inodes_before)
    if (b.ino == ino) return b.image.has_value() == existed;
  return false;
}

const Inode* inode_before(const OpRecord& r, uint64_t ino) {
  for (const InodeBefore& b : r.inodes_before)
    if (b.ino == ino && b.image) return &*b.image;
  return nullptr;
}

const DirentBefore* dirent_before(const OpRecord& r, uint64_t parent, std::string_view name) {
  for (const auto& d : r.dirents_before)
    if (d.parent == parent && d.name == name) return &d;
  return nullptr;
}

std::vector<std::string> names_in(Fs& fs, uint64_t dir) {
  std::vector<std::string> out;
  for (auto& [name, d] : must(fs.readdir(dir, "", 100000))) out.push_back(name);
  return out;
}

}  // namespace

// ============================================================ namespace

TEST_CASE("mkdir, create, mknod and symlink make the right nodes", "[fs]") {
  FsEnv e;
  Inode d = e.mkdir(kRootIno, "d", 0750);
  CHECK(S_ISDIR(d.mode));
  CHECK((d.mode & 07777) == 0750);
  CHECK(d.nlink == 2);
  CHECK(d.uid == kCaller.uid);
  CHECK(d.gid == kCaller.gid);
  CHECK(e.nlink(kRootIno) == 3);
  CHECK(e.ino_of(kRootIno, "d") == d.ino);
  CHECK(must(e.fs->lookup(d.ino, "..")).ino == kRootIno);
  CHECK(must(e.fs->lookup(d.ino, ".")).ino == d.ino);

  Inode f = e.create(d.ino, "f", 0600);
  CHECK(S_ISREG(f.mode));
  CHECK(f.nlink == 1);
  CHECK(f.size == 0);
  CHECK(e.nlink(d.ino) == 2);  // files do not add to the parent's link count

  Inode fifo = must(e.fs->mknod(kCaller, d.ino, "p", S_IFIFO | 0644, makedev(1, 2), OpKind::kMknod));
  CHECK(S_ISFIFO(fifo.mode));
  CHECK(fifo.rdev == 0);  // only devices keep rdev
  Inode sock = must(e.fs->mknod(kCaller, d.ino, "s", S_IFSOCK | 0644, 0, OpKind::kMknod));
  CHECK(S_ISSOCK(sock.mode));
  Inode chr = must(e.fs->mknod(kCaller, d.ino, "null", S_IFCHR | 0666, makedev(1, 3), OpKind::kMknod));
  CHECK(S_ISCHR(chr.mode));
  CHECK(chr.rdev == makedev(1, 3));
  CHECK(must(e.fs->getattr(chr.ino)).rdev == makedev(1, 3));
  Inode plain = must(e.fs->mknod(kCaller, d.ino, "plain", 0644, 0, OpKind::kMknod));
  CHECK(S_ISREG(plain.mode));
  REQUIRE_ERR(e.fs->mknod(kCaller, d.ino, "dir", S_IFDIR | 0755, 0, OpKind::kMknod), EINVAL);

  Inode ln = must(e.fs->symlink(kCaller, d.ino, "link", "../some/where"));
  CHECK(S_ISLNK(ln.mode));
  CHECK(ln.size == std::string("../some/where").size());
  CHECK(must(e.fs->readlink(ln.ino)) == "../some/where");
  REQUIRE_ERR(e.fs->readlink(f.ino), EINVAL);
  REQUIRE_ERR(e.fs->symlink(kCaller, d.ino, "empty", ""), ENOENT);
  CHECK(must(e.fs->symlink(kCaller, d.ino, "long", std::string(4095, 'x'))).size == 4095);
  REQUIRE_ERR(e.fs->symlink(kCaller, d.ino, "toolong", std::string(4096, 'x')), ENAMETOOLONG);

  std::map<std::string, uint32_t> types;
  for (auto& [name, dent] : must(e.fs->readdir(d.ino, "", 100))) types[name] = dent.type;
  CHECK(types == std::map<std::string, uint32_t>{{"f", S_IFREG},      {"p", S_IFIFO},     {"s", S_IFSOCK},
                                                {"null", S_IFCHR},   {"plain", S_IFREG}, {"link", S_IFLNK},
                                                {"long", S_IFLNK}});
  CHECK(e.path_of(f.ino) == "/d/f");
  e.require_healthy();
}

TEST_CASE("namespace errors", "[fs]") {
  FsEnv e;
  Inode d = e.mkdir(kRootIno, "d");
  Inode f = e.create(d.ino, "f");
  const size_t before = e.log.size();
  CHECK_ERR(e.fs->mkdir(kCaller, d.ino, "f", 0755), EEXIST);
  CHECK_ERR(e.fs->mknod(kCaller, d.ino, "f", S_IFREG | 0644, 0, OpKind::kCreate), EEXIST);
  CHECK_ERR(e.fs->symlink(kCaller, d.ino, "f", "x"), EEXIST);
  for (std::string_view bad : {"", ".", "..", "a/b"}) {
    INFO("name '" << bad << "'");
    CHECK_ERR(e.fs->mknod(kCaller, d.ino, bad, S_IFREG | 0644, 0, OpKind::kCreate), EINVAL);
    CHECK_ERR(e.fs->mkdir(kCaller, d.ino, bad, 0755), EINVAL);
  }
  CHECK_ERR(e.fs->mkdir(kCaller, f.ino, "x", 0755), ENOTDIR);  // parent is a file
  CHECK_ERR(e.fs->mkdir(kCaller, 9999, "x", 0755), ENOENT);    // parent does not exist
  CHECK_ERR(e.fs->lookup(d.ino, "missing"), ENOENT);
  CHECK_ERR(e.fs->lookup(f.ino, "x"), ENOTDIR);
  CHECK_ERR(e.fs->unlink(kCaller, d.ino, "missing"), ENOENT);
  CHECK_ERR(e.fs->unlink(kCaller, kRootIno, "d"), EISDIR);
  CHECK_ERR(e.fs->rmdir(kCaller, d.ino, "f"), ENOTDIR);
  CHECK_ERR(e.fs->rmdir(kCaller, kRootIno, "d"), ENOTEMPTY);
  CHECK_ERR(e.fs->rmdir(kCaller, kRootIno, "missing"), ENOENT);
  CHECK_ERR(e.fs->link(kCaller, d.ino, kRootIno, "dirlink"), EPERM);
  CHECK_ERR(e.fs->link(kCaller, f.ino, d.ino, "f"), EEXIST);
  CHECK_ERR(e.fs->readdir(f.ino, "", 10), ENOTDIR);
  CHECK_ERR(e.fs->getattr(9999), ENOENT);
  // a failed call logs nothing and changes nothing
  CHECK(e.log.size() == before);
  CHECK(names_in(*e.fs, d.ino) == std::vector<std::string>{"f"});
  // a removed directory cannot get new entries
  Inode gone = e.mkdir(kRootIno, "gone");
  REQUIRE_OK(e.fs->rmdir(kCaller, kRootIno, "gone"));
  CHECK_ERR(e.fs->mknod(kCaller, gone.ino, "x", S_IFREG | 0644, 0, OpKind::kCreate), ENOENT);
  e.require_healthy();
}

TEST_CASE("names of 255 bytes work and 256 is ENAMETOOLONG", "[fs]") {
  FsEnv e;
  const std::string n255(255, 'n'), n256(256, 'n');
  const std::string m255(255, 'm'), m256(256, 'm');
  Inode d = e.mkdir(kRootIno, "d");

  Inode f = e.create(d.ino, n255);
  CHECK(e.ino_of(d.ino, n255) == f.ino);
  CHECK_ERR(e.fs->mknod(kCaller, d.ino, n256, S_IFREG | 0644, 0, OpKind::kCreate), ENAMETOOLONG);
  CHECK_ERR(e.fs->mkdir(kCaller, d.ino, n256, 0755), ENAMETOOLONG);
  CHECK_ERR(e.fs->symlink(kCaller, d.ino, n256, "t"), ENAMETOOLONG);
  CHECK_ERR(e.fs->link(kCaller, f.ino, d.ino, n256), ENAMETOOLONG);
  CHECK_ERR(e.fs->lookup(d.ino, n256), ENAMETOOLONG);
  CHECK_ERR(e.fs->unlink(kCaller, d.ino, n256), ENAMETOOLONG);
  CHECK_ERR(e.fs->rmdir(kCaller, d.ino, n256), ENAMETOOLONG);
  CHECK_ERR(e.fs->rename(kCaller, d.ino, n255, d.ino, n256, 0), ENAMETOOLONG);
  CHECK_ERR(e.fs->rename(kCaller, d.ino, n256, d.ino, "x", 0), ENAMETOOLONG);

  Inode sub = e.mkdir(d.ino, m255);
  CHECK(S_ISDIR(sub.mode));
  must(e.fs->symlink(kCaller, d.ino, std::string(255, 's'), "t"));
  must(e.fs->link(kCaller, f.ino, d.ino, std::string(255, 'l')));
  REQUIRE_OK(e.fs->rename(kCaller, d.ino, n255, d.ino, std::string(255, 'r'), 0));
  CHECK(e.path_of(f.ino) == "/d/" + std::string(255, 'r'));
  REQUIRE_OK(e.fs->unlink(kCaller, d.ino, std::string(255, 'l')));
  REQUIRE_OK(e.fs->rmdir(kCaller, d.ino, m255));
  e.require_healthy();
}

TEST_CASE("unlink and rmdir", "[fs]") {
  FsEnv e;
  Inode d = e.mkdir(kRootIno, "d");
  Inode sub = e.mkdir(d.ino, "sub");
  Inode f = e.create(d.ino, "f");
  e.write(f.ino, 0, "contents");
  CHECK(e.nlink(d.ino) == 3);

  REQUIRE_OK(e.fs->unlink(kCaller, d.ino, "f"));
  CHECK_ERR(e.fs->lookup(d.ino, "f"), ENOENT);
  Inode dead = must(e.fs->getattr(f.ino));
  CHECK(dead.nlink == 0);
  // an open handle can still read an unlinked file
  CHECK(e.read_all(f.ino) == "contents");

  REQUIRE_OK(e.fs->rmdir(kCaller, d.ino, "sub"));
  CHECK(e.nlink(d.ino) == 2);
  CHECK(must(e.fs->getattr(sub.ino)).nlink == 0);
  CHECK_ERR(e.fs->lookup(d.ino, "sub"), ENOENT);
  REQUIRE_OK(e.fs->rmdir(kCaller, kRootIno, "d"));
  CHECK(e.nlink(kRootIno) == 2);
  CHECK(names_in(*e.fs, kRootIno).empty());
  e.require_healthy();
}

TEST_CASE("rename", "[fs]") {
  FsEnv e;
  Inode a = e.mkdir(kRootIno, "a");
  Inode b = e.mkdir(kRootIno, "b");
  Inode f = e.create(a.ino, "f");
  e.write(f.ino, 0, "file f");

  SECTION("plain, within one directory") {
    REQUIRE_OK(e.fs->rename(kCaller, a.ino, "f", a.ino, "g", 0));
    CHECK_ERR(e.fs->lookup(a.ino, "f"), ENOENT);
    CHECK(e.ino_of(a.ino, "g") == f.ino);
    CHECK(e.path_of(f.ino) == "/a/g");
    CHECK(e.nlink(f.ino) == 1);
  }
  SECTION("plain, to another directory") {
    REQUIRE_OK(e.fs->rename(kCaller, a.ino, "f", b.ino, "f", 0));
    CHECK(names_in(*e.fs, a.ino).empty());
    CHECK(e.ino_of(b.ino, "f") == f.ino);
    CHECK(e.path_of(f.ino) == "/b/f");
  }
  SECTION("a directory to another parent moves its link count") {
    Inode sub = e.mkdir(a.ino, "sub");
    e.create(sub.ino, "inside");
    REQUIRE_OK(e.fs->rename(kCaller, a.ino, "sub", b.ino, "moved", 0));
    CHECK(e.nlink(a.ino) == 2);
    CHECK(e.nlink(b.ino) == 3);
    CHECK(must(e.fs->lookup(sub.ino, "..")).ino == b.ino);
    CHECK(e.path_of(e.ino_of(sub.ino, "inside")) == "/b/moved/inside");
  }
  SECTION("over an existing file") {
    Inode g = e.create(b.ino, "g");
    e.write(g.ino, 0, "file g");
    REQUIRE_OK(e.fs->rename(kCaller, a.ino, "f", b.ino, "g", 0));
    CHECK(e.ino_of(b.ino, "g") == f.ino);
    CHECK(e.read_all(f.ino) == "file f");
    CHECK(must(e.fs->getattr(g.ino)).nlink == 0);
    CHECK(names_in(*e.fs, a.ino).empty());
    CHECK(e.log.back().ino2 == g.ino);
  }
  SECTION("over an existing file that has another name") {
    Inode g = e.create(b.ino, "g");
    must(e.fs->link(kCaller, g.ino, kRootIno, "g2"));
    REQUIRE_OK(e.fs->rename(kCaller, a.ino, "f", b.ino, "g", 0));
    CHECK(e.nlink(g.ino) == 1);
    CHECK(e.ino_of(kRootIno, "g2") == g.ino);
    CHECK(e.path_of(g.ino) == "/g2");
  }
  SECTION("over an empty directory") {
    Inode src = e.mkdir(a.ino, "src");
    Inode dst = e.mkdir(b.ino, "dst");
    REQUIRE(e.nlink(a.ino) == 3);
    REQUIRE(e.nlink(b.ino) == 3);
    REQUIRE_OK(e.fs->rename(kCaller, a.ino, "src", b.ino, "dst", 0));
    CHECK(e.ino_of(b.ino, "dst") == src.ino);
    CHECK(must(e.fs->getattr(dst.ino)).nlink == 0);
    CHECK(e.nlink(a.ino) == 2);
    CHECK(e.nlink(b.ino) == 3);
  }
  SECTION("over an empty directory in the same parent") {
    Inode src = e.mkdir(a.ino, "src");
    e.mkdir(a.ino, "dst");
    REQUIRE(e.nlink(a.ino) == 4);
    REQUIRE_OK(e.fs->rename(kCaller, a.ino, "src", a.ino, "dst", 0));
    CHECK(e.ino_of(a.ino, "dst") == src.ino);
    CHECK(e.nlink(a.ino) == 3);
  }
  SECTION("onto a non-empty directory is ENOTEMPTY") {
    e.mkdir(a.ino, "src");
    Inode dst = e.mkdir(b.ino, "dst");
    e.create(dst.ino, "occupant");
    CHECK_ERR(e.fs->rename(kCaller, a.ino, "src", b.ino, "dst", 0), ENOTEMPTY);
    CHECK(e.ino_of(b.ino, "dst") == dst.ino);
  }
  SECTION("file over directory and directory over file") {
    e.mkdir(b.ino, "dir");
    e.create(b.ino, "file");
    CHECK_ERR(e.fs->rename(kCaller, a.ino, "f", b.ino, "dir", 0), EISDIR);
    CHECK_ERR(e.fs->rename(kCaller, kRootIno, "a", b.ino, "file", 0), ENOTDIR);
  }
  SECTION("a directory into its own subdirectory is EINVAL") {
    Inode sub = e.mkdir(a.ino, "sub");
    Inode deep = e.mkdir(sub.ino, "deep");
    CHECK_ERR(e.fs->rename(kCaller, kRootIno, "a", deep.ino, "a", 0), EINVAL);
    CHECK_ERR(e.fs->rename(kCaller, kRootIno, "a", sub.ino, "x", 0), EINVAL);
    CHECK_ERR(e.fs->rename(kCaller, kRootIno, "a", a.ino, "x", 0), EINVAL);
    CHECK_ERR(e.fs->rename(kCaller, kRootIno, "a", deep.ino, "a", RENAME_EXCHANGE), ENOENT);
    CHECK(e.path_of(deep.ino) == "/a/sub/deep");
  }
  SECTION("RENAME_NOREPLACE") {
    e.create(b.ino, "taken");
    CHECK_ERR(e.fs->rename(kCaller, a.ino, "f", b.ino, "taken", RENAME_NOREPLACE), EEXIST);
    CHECK(e.ino_of(a.ino, "f") == f.ino);
    REQUIRE_OK(e.fs->rename(kCaller, a.ino, "f", b.ino, "free", RENAME_NOREPLACE));
    CHECK(e.ino_of(b.ino, "free") == f.ino);
  }
  SECTION("RENAME_EXCHANGE of a file and a directory in different parents") {
    Inode dir = e.mkdir(b.ino, "dir");
    Inode child = e.create(dir.ino, "child");
    REQUIRE(e.nlink(a.ino) == 2);
    REQUIRE(e.nlink(b.ino) == 3);
    REQUIRE_OK(e.fs->rename(kCaller, a.ino, "f", b.ino, "dir", RENAME_EXCHANGE));
    CHECK(e.ino_of(a.ino, "f") == dir.ino);
    CHECK(e.ino_of(b.ino, "dir") == f.ino);
    CHECK(e.nlink(a.ino) == 3);  // gained a subdirectory
    CHECK(e.nlink(b.ino) == 2);  // lost one
    CHECK(e.nlink(dir.ino) == 2);
    CHECK(e.nlink(f.ino) == 1);
    CHECK(must(e.fs->lookup(dir.ino, "..")).ino == a.ino);
    CHECK(e.path_of(child.ino) == "/a/f/child");
    CHECK(e.path_of(f.ino) == "/b/dir");
    std::map<std::string, uint32_t> ta, tb;
    for (auto& [n, d] : must(e.fs->readdir(a.ino, "", 10))) ta[n] = d.type;
    for (auto& [n, d] : must(e.fs->readdir(b.ino, "", 10))) tb[n] = d.type;
    CHECK(ta == std::map<std::string, uint32_t>{{"f", S_IFDIR}});
    CHECK(tb == std::map<std::string, uint32_t>{{"dir", S_IFREG}});
    CHECK(e.log.back().ino == f.ino);
    CHECK(e.log.back().ino2 == dir.ino);
  }
  SECTION("RENAME_EXCHANGE of two directories in different parents") {
    Inode x = e.mkdir(a.ino, "x");
    Inode y = e.mkdir(b.ino, "y");
    e.create(x.ino, "in_x");
    REQUIRE_OK(e.fs->rename(kCaller, a.ino, "x", b.ino, "y", RENAME_EXCHANGE));
    CHECK(e.ino_of(a.ino, "x") == y.ino);
    CHECK(e.ino_of(b.ino, "y") == x.ino);
    CHECK(e.nlink(a.ino) == 3);  // one subdirectory each, before and after
    CHECK(e.nlink(b.ino) == 3);
    CHECK(must(e.fs->lookup(x.ino, "..")).ino == b.ino);
    CHECK(must(e.fs->lookup(y.ino, "..")).ino == a.ino);
    CHECK(e.path_of(e.ino_of(x.ino, "in_x")) == "/b/y/in_x");
    const OpRecord& r = e.log.back();
    CHECK(has_inode_before(r, a.ino, true));
    CHECK(has_inode_before(r, b.ino, true));
    CHECK(has_inode_before(r, x.ino, true));
    CHECK(has_inode_before(r, y.ino, true));
    // an exchange that would put a directory inside itself
    Inode inner = e.mkdir(x.ino, "inner");
    CHECK_ERR(e.fs->rename(kCaller, b.ino, "y", inner.ino, "anything", 0), EINVAL);
    e.create(inner.ino, "leaf");
    CHECK_ERR(e.fs->rename(kCaller, b.ino, "y", inner.ino, "leaf", RENAME_EXCHANGE), EINVAL);
    CHECK_ERR(e.fs->rename(kCaller, inner.ino, "leaf", b.ino, "y", RENAME_EXCHANGE), EINVAL);
  }
  SECTION("RENAME_EXCHANGE needs both names; flags cannot be combined") {
    CHECK_ERR(e.fs->rename(kCaller, a.ino, "f", b.ino, "nothing", RENAME_EXCHANGE), ENOENT);
    CHECK_ERR(e.fs->rename(kCaller, a.ino, "f", b.ino, "x", RENAME_EXCHANGE | RENAME_NOREPLACE), EINVAL);
    CHECK_ERR(e.fs->rename(kCaller, a.ino, "missing", b.ino, "x", 0), ENOENT);
  }
  SECTION("renaming one name of a file onto another name of it does nothing") {
    must(e.fs->link(kCaller, f.ino, b.ino, "same"));
    REQUIRE_OK(e.fs->rename(kCaller, a.ino, "f", b.ino, "same", 0));
    CHECK(e.ino_of(a.ino, "f") == f.ino);
    CHECK(e.ino_of(b.ino, "same") == f.ino);
    CHECK(e.nlink(f.ino) == 2);
  }
  e.require_healthy();
}

TEST_CASE("setgid directories pass on their group", "[fs]") {
  FsEnv e;
  const Caller owner{1000, 500, 1, "owner"};
  const Caller other{2000, 2000, 2, "other"};
  Inode sg = e.mkdir(kRootIno, "sg", 02775, owner);
  REQUIRE((sg.mode & S_ISGID) != 0);
  REQUIRE(sg.gid == 500);

  Inode f = e.create(sg.ino, "f", 0644, other);
  CHECK(f.gid == 500);
  CHECK(f.uid == 2000);
  CHECK((f.mode & S_ISGID) == 0);
  Inode sub = e.mkdir(sg.ino, "sub", 0755, other);
  CHECK(sub.gid == 500);
  CHECK((sub.mode & S_ISGID) != 0);
  Inode deeper = e.mkdir(sub.ino, "deeper", 0755, other);  // inherited again below
  CHECK(deeper.gid == 500);
  CHECK((deeper.mode & S_ISGID) != 0);
  Inode fifo = must(e.fs->mknod(other, sub.ino, "p", S_IFIFO | 0644, 0, OpKind::kMknod));
  CHECK(fifo.gid == 500);
  Inode ln = must(e.fs->symlink(other, sub.ino, "l", "x"));
  CHECK(ln.gid == 500);
  // as stored, not only as returned
  CHECK(must(e.fs->getattr(sub.ino)).gid == 500);
  CHECK((must(e.fs->getattr(sub.ino)).mode & S_ISGID) != 0);

  Inode plain = e.mkdir(kRootIno, "plain", 0755, owner);
  Inode g = e.create(plain.ino, "g", 0644, other);
  CHECK(g.gid == 2000);
  Inode pd = e.mkdir(plain.ino, "pd", 0755, other);
  CHECK(pd.gid == 2000);
  CHECK((pd.mode & S_ISGID) == 0);
}

TEST_CASE("hard links", "[fs]") {
  FsEnv e;
  Inode a = e.mkdir(kRootIno, "a");
  Inode b = e.mkdir(kRootIno, "b");
  Inode f = e.create(a.ino, "f");
  e.write(f.ino, 0, "shared data");

  Inode linked = must(e.fs->link(kCaller, f.ino, b.ino, "g"));
  CHECK(linked.nlink == 2);
  CHECK(e.nlink(f.ino) == 2);
  CHECK(e.ino_of(b.ino, "g") == f.ino);
  CHECK(e.path_of(f.ino) == "/a/f");  // the primary name stays

  // unlinking the primary name keeps the file reachable by the other
  REQUIRE_OK(e.fs->unlink(kCaller, a.ino, "f"));
  CHECK(e.nlink(f.ino) == 1);
  CHECK_ERR(e.fs->lookup(a.ino, "f"), ENOENT);
  CHECK(e.ino_of(b.ino, "g") == f.ino);
  CHECK(e.read_all(f.ino) == "shared data");
  CHECK(e.path_of(f.ino) == "/b/g");
  e.require_healthy();

  // a secondary name that is renamed is still tracked
  must(e.fs->link(kCaller, f.ino, a.ino, "x"));
  REQUIRE_OK(e.fs->rename(kCaller, a.ino, "x", a.ino, "y", 0));
  CHECK(e.nlink(f.ino) == 2);
  REQUIRE_OK(e.fs->unlink(kCaller, b.ino, "g"));
  CHECK(e.path_of(f.ino) == "/a/y");
  CHECK(e.read_all(f.ino) == "shared data");
  e.require_healthy();

  // writes through one name are seen through the other
  must(e.fs->link(kCaller, f.ino, kRootIno, "z"));
  e.write(e.ino_of(kRootIno, "z"), 0, "SHARED");
  CHECK(e.read_all(e.ino_of(a.ino, "y")) == "SHARED data");

  REQUIRE_OK(e.fs->unlink(kCaller, a.ino, "y"));
  REQUIRE_OK(e.fs->unlink(kCaller, kRootIno, "z"));
  CHECK(e.nlink(f.ino) == 0);
  CHECK_ERR(e.fs->link(kCaller, f.ino, a.ino, "back"), ENOENT);  // no linking a removed file
  e.require_healthy();
}

TEST_CASE("tmpfile: a file with no name, written, then linked once", "[fs]") {
  FsEnv e;
  Inode d = e.mkdir(kRootIno, "d", 02775);
  const Inode d_before = must(e.fs->getattr(d.ino));
  Inode t = must(e.fs->tmpfile(kCaller, d.ino, S_IFREG | 0666, 022));
  CHECK(S_ISREG(t.mode));
  CHECK((t.mode & 07777) == 0644);  // less the umask
  CHECK(t.nlink == 0);
  CHECK(t.gid == d.gid);  // a setgid directory's group, as for any new file
  CHECK(must(e.fs->readdir(d.ino, "", 100)).empty());
  CHECK(must(e.fs->getattr(d.ino)).mtime == d_before.mtime);  // no name, no change to the directory
  const OpRecord& made = e.log.back();
  CHECK(made.kind == OpKind::kTmpfile);
  CHECK(made.ino == t.ino);
  CHECK(made.path == "/d");
  e.write(t.ino, 0, "written before it had a name");
  e.require_healthy();

  Inode linked = must(e.fs->link(kCaller, t.ino, d.ino, "named"));
  CHECK(linked.nlink == 1);
  CHECK(e.ino_of(d.ino, "named") == t.ino);
  CHECK(e.path_of(t.ino) == "/d/named");
  CHECK(e.read_all(t.ino) == "written before it had a name");
  CHECK(e.log.back().kind == OpKind::kLink);
  CHECK(e.log.back().path2 == "/d/named");
  e.require_healthy();

  // Once named, it is a file like any other: removed, it cannot come back.
  REQUIRE_OK(e.fs->unlink(kCaller, d.ino, "named"));
  CHECK_ERR(e.fs->link(kCaller, t.ino, d.ino, "again"), ENOENT);
  // Nor can a removed plain file, nor a tmpfile in a removed directory be made.
  REQUIRE_OK(e.fs->rmdir(kCaller, kRootIno, "d"));
  CHECK_ERR(e.fs->tmpfile(kCaller, d.ino, S_IFREG | 0600), ENOENT);
  e.require_healthy();
}

// ============================================================ data

TEST_CASE("random writes, reads and truncates agree with an in-memory model", "[fs]") {
  FsEnv e;
  Inode f = e.create(kRootIno, "data");
  std::string model;
  std::mt19937_64 rng(60);
  constexpr uint64_t kMaxOffset = 700000;
  for (int step = 0; step < 250; ++step) {
    INFO("step " << step);
    switch (rng() % 10) {
      case 0:
      case 1:
      case 2:
      case 3: {  // write
        uint64_t off = rng() % kMaxOffset;
        size_t len = rng() % 3 == 0 ? 1 + rng() % 300000 : 1 + rng() % 5000;
        std::string data = roam::testing::random_bytes(rng, len);
        Inode after = e.write(f.ino, off, data);
        if (model.size() < off + len) model.resize(off + len, '\0');
        model.replace(off, len, data);
        REQUIRE(after.size == model.size());
        break;
      }
      case 4: {  // truncate down or up
        uint64_t size = rng() % (kMaxOffset + 200000);
        Inode after = e.truncate(f.ino, size);
        model.resize(size, '\0');
        REQUIRE(after.size == size);
        break;
      }
      case 5: {  // punch a hole
        if (model.empty()) break;
        uint64_t off = rng() % model.size();
        uint64_t len = 1 + rng() % 200000;
        REQUIRE_OK(e.fs->fallocate(kCaller, f.ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len));
        uint64_t end = std::min<uint64_t>(off + len, model.size());
        std::fill(model.begin() + static_cast<long>(off), model.begin() + static_cast<long>(end), '\0');
        break;
      }
      default: {  // read a random range, possibly past the end
        uint64_t off = rng() % (model.size() + 1000);
        size_t len = rng() % 200000;
        std::string got = e.read(f.ino, off, len);
        std::string want = off < model.size() ? model.substr(off, len) : std::string();
        REQUIRE(got.size() == want.size());
        REQUIRE(got == want);
      }
    }
    REQUIRE(must(e.fs->getattr(f.ino)).size == model.size());
  }
  REQUIRE(e.read_all(f.ino) == model);
  e.require_healthy();
}

TEST_CASE("holes read as zeros; truncate down then up does not bring data back", "[fs]") {
  FsEnv e;
  Inode f = e.create(kRootIno, "f");
  e.write(f.ino, 100000, "tail");
  CHECK(must(e.fs->getattr(f.ino)).size == 100004);
  CHECK(e.read(f.ino, 0, 100000) == std::string(100000, '\0'));
  CHECK(e.read(f.ino, 99998, 100) == std::string(2, '\0') + "tail");
  CHECK(e.read(f.ino, 100004, 10).empty());
  CHECK(e.read(f.ino, 1ull << 40, 10).empty());

  e.write(f.ino, 0, std::string(1000, 'x'));
  e.truncate(f.ino, 500);
  CHECK(e.read_all(f.ino) == std::string(500, 'x'));
  e.truncate(f.ino, 2000);
  CHECK(e.read_all(f.ino) == std::string(500, 'x') + std::string(1500, '\0'));
  e.truncate(f.ino, 0);
  CHECK(e.read_all(f.ino).empty());
  e.truncate(f.ino, 300);
  CHECK(e.read_all(f.ino) == std::string(300, '\0'));
  CHECK_ERR(e.fs->read(kRootIno, 0, 10, std::string(10, '\0').data()), EISDIR);
  e.require_healthy();
}

TEST_CASE("overwrites, including ones that split blob-sized chunks", "[fs]") {
  FsEnv e;
  Inode f = e.create(kRootIno, "f");
  std::string model(3 * kMaxBlobSize + 77, 'a');
  e.write(f.ino, 0, model);
  std::string mid(kMaxBlobSize + 10, 'b');
  uint64_t off = kMaxBlobSize - 5;
  e.write(f.ino, off, mid);
  model.replace(off, mid.size(), mid);
  e.write(f.ino, 7, "c");
  model[7] = 'c';
  CHECK(e.read_all(f.ino) == model);
  // a read that straddles blob boundaries
  CHECK(e.read(f.ino, kMaxBlobSize - 10, 20) == model.substr(kMaxBlobSize - 10, 20));
  e.require_healthy();
}

TEST_CASE("a zero-length write changes nothing, even past the end", "[fs]") {
  // POSIX: a write of 0 bytes to a regular file "shall return zero and have no
  // other results" -- in particular it must not extend the file.
  FsEnv e;
  Inode f = e.create(kRootIno, "f");
  e.write(f.ino, 0, "abc");
  const Inode before = must(e.fs->getattr(f.ino));
  const size_t records = e.log.size();
  Inode after = must(e.fs->write(kCaller, f.ino, 1000, ""));
  CHECK(e.log.size() == records);
  CHECK(after.size == 3);
  CHECK(must(e.fs->getattr(f.ino)).size == 3);
  CHECK(must(e.fs->getattr(f.ino)).mtime == before.mtime);
  CHECK(e.read_all(f.ino) == "abc");
  e.require_healthy();
}

TEST_CASE("files larger than 4 GiB", "[fs]") {
  FsEnv e;
  Inode f = e.create(kRootIno, "big");
  const uint64_t far = 5 * kGiB + 123;
  e.write(f.ino, 10, "start");
  Inode after = e.write(f.ino, far, "far away");
  CHECK(after.size == far + 8);
  CHECK(must(e.fs->getattr(f.ino)).size == far + 8);
  CHECK(e.read(f.ino, far, 8) == "far away");
  CHECK(e.read(f.ino, far - 3, 100) == std::string(3, '\0') + "far away");
  CHECK(e.read(f.ino, 4 * kGiB - 50, 100) == std::string(100, '\0'));  // hole across 4 GiB
  CHECK(e.read(f.ino, 2 * kGiB, 4096) == std::string(4096, '\0'));
  CHECK(e.read(f.ino, 10, 5) == "start");
  // data across the 4 GiB line
  e.write(f.ino, 4 * kGiB - 3, "abcdef");
  CHECK(e.read(f.ino, 4 * kGiB - 4, 8) == std::string(1, '\0') + "abcdef" + std::string(1, '\0'));
  e.truncate(f.ino, 4 * kGiB + 1);
  CHECK(e.read(f.ino, 4 * kGiB - 3, 10) == "abcd");
  e.require_healthy();
}

TEST_CASE("fallocate", "[fs]") {
  FsEnv e;
  Inode f = e.create(kRootIno, "f");
  e.write(f.ino, 0, std::string(10000, 'x'));

  SECTION("default mode extends the size with zeros") {
    REQUIRE_OK(e.fs->fallocate(kCaller, f.ino, 0, 9000, 4000));
    CHECK(must(e.fs->getattr(f.ino)).size == 13000);
    CHECK(e.read_all(f.ino) == std::string(10000, 'x') + std::string(3000, '\0'));
    REQUIRE_OK(e.fs->fallocate(kCaller, f.ino, 0, 0, 100));  // inside: no change
    CHECK(must(e.fs->getattr(f.ino)).size == 13000);
  }
  SECTION("KEEP_SIZE does not change the size") {
    REQUIRE_OK(e.fs->fallocate(kCaller, f.ino, FALLOC_FL_KEEP_SIZE, 9000, 4000));
    CHECK(must(e.fs->getattr(f.ino)).size == 10000);
    CHECK(e.read_all(f.ino) == std::string(10000, 'x'));
  }
  SECTION("PUNCH_HOLE zeroes a range and keeps the size") {
    REQUIRE_OK(e.fs->fallocate(kCaller, f.ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, 2000));
    CHECK(must(e.fs->getattr(f.ino)).size == 10000);
    CHECK(e.read_all(f.ino) == std::string(1000, 'x') + std::string(2000, '\0') + std::string(7000, 'x'));
    // past the end: clipped, size unchanged
    REQUIRE_OK(e.fs->fallocate(kCaller, f.ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 9500, 100000));
    CHECK(must(e.fs->getattr(f.ino)).size == 10000);
    CHECK(e.read(f.ino, 9000, 1000) == std::string(500, 'x') + std::string(500, '\0'));
  }
  SECTION("ZERO_RANGE zeroes and may extend") {
    REQUIRE_OK(e.fs->fallocate(kCaller, f.ino, FALLOC_FL_ZERO_RANGE, 9000, 2000));
    CHECK(must(e.fs->getattr(f.ino)).size == 11000);
    CHECK(e.read_all(f.ino) == std::string(9000, 'x') + std::string(2000, '\0'));
  }
  SECTION("errors") {
    CHECK_ERR(e.fs->fallocate(kCaller, f.ino, FALLOC_FL_PUNCH_HOLE, 0, 10), EOPNOTSUPP);
    CHECK_ERR(e.fs->fallocate(kCaller, f.ino, FALLOC_FL_COLLAPSE_RANGE, 0, 4096), EOPNOTSUPP);
    CHECK_ERR(e.fs->fallocate(kCaller, f.ino, 0, 0, 0), EINVAL);
    CHECK_ERR(e.fs->fallocate(kCaller, f.ino, 0, UINT64_MAX - 5, 10), EINVAL);
    CHECK_ERR(e.fs->fallocate(kCaller, kRootIno, 0, 0, 10), EISDIR);
    Inode p = must(e.fs->mknod(kCaller, kRootIno, "p", S_IFIFO | 0644, 0, OpKind::kMknod));
    CHECK_ERR(e.fs->fallocate(kCaller, p.ino, 0, 0, 10), ENODEV);
    CHECK(must(e.fs->getattr(f.ino)).size == 10000);
  }
  e.require_healthy();
}

TEST_CASE("setattr changes mode, owner and times", "[fs]") {
  FsEnv e;
  Inode f = e.create(kRootIno, "f");
  SetattrArgs a;
  a.mask = kSetMode | kSetUid | kSetGid | kSetAtime | kSetMtime;
  a.mode = S_IFDIR | 04711;  // type bits in the argument are ignored
  a.uid = 7;
  a.gid = 8;
  a.atime = {1000, 1};
  a.mtime = {2000, 2};
  Inode after = must(e.fs->setattr(kCaller, f.ino, a));
  CHECK(after.mode == (S_IFREG | 04711));
  CHECK(after.uid == 7);
  CHECK(after.gid == 8);
  CHECK(after.atime == Timespec{1000, 1});
  CHECK(after.mtime == Timespec{2000, 2});
  Inode stored = must(e.fs->getattr(f.ino));
  CHECK(stored == after);
  const OpRecord& r = e.last();
  CHECK(r.kind == OpKind::kSetattr);
  CHECK(r.flags == a.mask);
  CHECK(r.uid == 7);
  CHECK(r.gid == 8);
  CHECK(r.mtime == Timespec{2000, 2});
  CHECK(inode_before(r, f.ino) != nullptr);
  CHECK(inode_before(r, f.ino)->uid == kCaller.uid);

  SetattrArgs t;
  t.mask = kSetSize;
  t.size = 10;
  CHECK_ERR(e.fs->setattr(kCaller, kRootIno, t), EISDIR);
}

TEST_CASE("write, truncate and chown can take away setuid, setgid and capabilities in the same record", "[fs]") {
  FsEnv e;
  auto chmod = [&](uint64_t ino, uint32_t mode) {
    SetattrArgs a;
    a.mask = kSetMode;
    a.mode = mode;
    must(e.fs->setattr(kCaller, ino, a));
  };
  const std::string caps("\x01\x00\x00\x02 fake capability", 21);

  // A write: setuid goes, setgid with group execute goes, the capability goes.
  Inode f = e.create(kRootIno, "f");
  chmod(f.ino, 06775);
  REQUIRE_OK(e.fs->setxattr(kCaller, f.ino, "security.capability", caps, 0));
  bool mode_changed = false;
  Inode after = must(e.fs->write(kCaller, f.ino, 0, "data", true, &mode_changed));
  CHECK(mode_changed);
  CHECK((after.mode & 07777) == 0775);
  CHECK(must(e.fs->getattr(f.ino)).mode == after.mode);
  CHECK_ERR(e.fs->getxattr(f.ino, "security.capability"), ENODATA);
  const OpRecord& w = e.last();
  CHECK(w.kind == OpKind::kWrite);
  CHECK((w.flags & kKilledPrivileges) != 0);
  CHECK((w.mode & 07777) == 0775);
  REQUIRE(inode_before(w, f.ino) != nullptr);
  CHECK((inode_before(w, f.ino)->mode & 07777) == 06775);
  REQUIRE(w.xattrs_before.size() == 1);
  CHECK(w.xattrs_before[0].value == caps);  // undo brings it back
  // Nothing left to take: the record says nothing about it.
  must(e.fs->write(kCaller, f.ino, 0, "more", true, &mode_changed));
  CHECK_FALSE(mode_changed);
  CHECK((e.last().flags & kKilledPrivileges) == 0);
  // Without the request, nothing is taken.
  chmod(f.ino, 04755);
  must(e.fs->write(kCaller, f.ino, 0, "x"));
  CHECK((must(e.fs->getattr(f.ino)).mode & 07777) == 04755);

  // setgid without group execute marks mandatory locking and stays.
  chmod(f.ino, 02745);
  after = must(e.fs->write(kCaller, f.ino, 0, "y", true, &mode_changed));
  CHECK_FALSE(mode_changed);
  CHECK((after.mode & 07777) == 02745);

  // A truncate or a chown (setattr) takes them in its record.
  chmod(f.ino, 06755);
  SetattrArgs t;
  t.mask = kSetSize;
  t.size = 1;
  t.kill_privs = true;
  after = must(e.fs->setattr(kCaller, f.ino, t));
  CHECK((after.mode & 07777) == 0755);
  CHECK(after.size == 1);
  CHECK(e.last().flags == (kSetSize | kKilledPrivileges));
  chmod(f.ino, 06711);
  SetattrArgs c;
  c.mask = kSetUid | kSetGid;
  c.uid = 5;
  c.gid = 6;
  c.kill_privs = true;
  after = must(e.fs->setattr(kCaller, f.ino, c));
  CHECK((after.mode & 07777) == 0711);
  CHECK(after.uid == 5);
  CHECK((e.last().mode & 07777) == 0711);
  // An explicit mode in the same call wins (the kernel never sends both).
  SetattrArgs m;
  m.mask = kSetMode;
  m.mode = 04755;
  m.kill_privs = true;
  CHECK((must(e.fs->setattr(kCaller, f.ino, m)).mode & 07777) == 04755);

  // Directories keep their setgid (and setuid).
  Inode d = e.mkdir(kRootIno, "d", 0755);
  chmod(d.ino, 06775);
  SetattrArgs dc;
  dc.mask = kSetUid;
  dc.uid = 9;
  dc.kill_privs = true;
  CHECK((must(e.fs->setattr(kCaller, d.ino, dc)).mode & 07777) == 06775);
  e.require_healthy();
}

// ============================================================ xattrs

TEST_CASE("extended attributes", "[fs]") {
  FsEnv e;
  Inode f = e.create(kRootIno, "f");
  REQUIRE_OK(e.fs->setxattr(kCaller, f.ino, "user.b", "two", 0));
  REQUIRE_OK(e.fs->setxattr(kCaller, f.ino, "user.a", std::string("o\0ne", 4), 0));
  REQUIRE_OK(e.fs->setxattr(kCaller, f.ino, "user.empty", "", 0));
  CHECK(must(e.fs->getxattr(f.ino, "user.a")) == std::string("o\0ne", 4));
  CHECK(must(e.fs->getxattr(f.ino, "user.empty")).empty());
  CHECK(must(e.fs->listxattr(f.ino)) == std::vector<std::string>{"user.a", "user.b", "user.empty"});
  CHECK(must(e.fs->listxattr(kRootIno)).empty());

  CHECK_ERR(e.fs->setxattr(kCaller, f.ino, "user.a", "x", XATTR_CREATE), EEXIST);
  CHECK_ERR(e.fs->setxattr(kCaller, f.ino, "user.new", "x", XATTR_REPLACE), ENODATA);
  CHECK(must(e.fs->getxattr(f.ino, "user.a")) == std::string("o\0ne", 4));
  REQUIRE_OK(e.fs->setxattr(kCaller, f.ino, "user.a", "replaced", XATTR_REPLACE));
  REQUIRE_OK(e.fs->setxattr(kCaller, f.ino, "user.c", "created", XATTR_CREATE));
  CHECK(must(e.fs->getxattr(f.ino, "user.a")) == "replaced");

  CHECK_ERR(e.fs->getxattr(f.ino, "user.none"), ENODATA);
  CHECK_ERR(e.fs->getxattr(9999, "user.a"), ENOENT);
  CHECK_ERR(e.fs->removexattr(kCaller, f.ino, "user.none"), ENODATA);
  CHECK_ERR(e.fs->setxattr(kCaller, f.ino, "", "x", 0), ERANGE);
  CHECK_ERR(e.fs->setxattr(kCaller, f.ino, std::string(256, 'n'), "x", 0), ERANGE);
  CHECK_ERR(e.fs->setxattr(kCaller, f.ino, "user.big", std::string(XATTR_SIZE_MAX + 1, 'v'), 0), E2BIG);
  REQUIRE_OK(e.fs->setxattr(kCaller, f.ino, "user.max", std::string(XATTR_SIZE_MAX, 'v'), 0));
  CHECK(must(e.fs->getxattr(f.ino, "user.max")).size() == XATTR_SIZE_MAX);

  REQUIRE_OK(e.fs->removexattr(kCaller, f.ino, "user.b"));
  CHECK_ERR(e.fs->getxattr(f.ino, "user.b"), ENODATA);
  CHECK(must(e.fs->listxattr(f.ino)) == std::vector<std::string>{"user.a", "user.c", "user.empty", "user.max"});

  // POSIX ACLs are stored and returned byte for byte (version 2 header, then
  // {tag, perm, id} entries: user_obj rwx, user 1001 r--, group_obj r-x, mask r-x, other ---).
  const std::string acl(
      "\x02\x00\x00\x00"
      "\x01\x00\x07\x00\xff\xff\xff\xff"
      "\x02\x00\x04\x00\xe9\x03\x00\x00"
      "\x04\x00\x05\x00\xff\xff\xff\xff"
      "\x10\x00\x05\x00\xff\xff\xff\xff"
      "\x20\x00\x00\x00\xff\xff\xff\xff",
      44);
  REQUIRE_OK(e.fs->setxattr(kCaller, f.ino, "system.posix_acl_access", acl, 0));
  CHECK(must(e.fs->getxattr(f.ino, "system.posix_acl_access")) == acl);
  Inode d = e.mkdir(kRootIno, "d");
  REQUIRE_OK(e.fs->setxattr(kCaller, d.ino, "system.posix_acl_default", acl, 0));
  CHECK(must(e.fs->getxattr(d.ino, "system.posix_acl_default")) == acl);
  // attributes are per inode
  CHECK_ERR(e.fs->getxattr(d.ino, "system.posix_acl_access"), ENODATA);
  e.require_healthy();
}

// ============================================================ the op log

TEST_CASE("every mutating call logs exactly one record", "[fs][oplog]") {
  FsEnv e;
  uint32_t pid = 100;
  uint64_t expected_seq = 1;
  int64_t last_ts = 0;
  // Runs `op` as a fresh caller and checks the one record it must produce.
  auto logged = [&](OpKind kind, const std::string& path, const std::string& path2, auto&& op) -> OpRecord {
    Caller c{1000 + pid, 2000 + pid, pid, "proc" + std::to_string(pid)};
    ++pid;
    const size_t before = e.log.size();
    op(c);
    INFO("op " << op_kind_name(kind) << " " << path);
    REQUIRE(e.log.size() == before + 1);
    OpRecord r = e.log.back();
    CHECK(r.kind == kind);
    CHECK(r.seq == expected_seq);
    CHECK(r.ts_ns > last_ts);
    CHECK(r.caller.uid == c.uid);
    CHECK(r.caller.gid == c.gid);
    CHECK(r.caller.pid == c.pid);
    CHECK(r.caller.comm == c.comm);
    CHECK(r.path == path);
    CHECK(r.path2 == path2);
    ++expected_seq;
    last_ts = r.ts_ns;
    return r;
  };

  Inode d, f, sub;
  const OpRecord mk = logged(OpKind::kMkdir, "/d", "", [&](const Caller& c) { d = must(e.fs->mkdir(c, kRootIno, "d", 0755)); });
  CHECK(mk.ino == d.ino);
  CHECK(mk.mode == (S_IFDIR | 0755));

  // a failed call logs nothing and uses no sequence number
  CHECK_ERR(e.fs->mkdir(kCaller, kRootIno, "d", 0755), EEXIST);

  const OpRecord cr = logged(OpKind::kCreate, "/d/f", "", [&](const Caller& c) {
    f = must(e.fs->mknod(c, d.ino, "f", S_IFREG | 0640, 0, OpKind::kCreate));
  });
  CHECK(cr.ino == f.ino);
  CHECK(cr.mode == (S_IFREG | 0640));
  const OpRecord mn = logged(OpKind::kMknod, "/d/dev", "", [&](const Caller& c) {
    must(e.fs->mknod(c, d.ino, "dev", S_IFBLK | 0600, makedev(8, 1), OpKind::kMknod));
  });
  CHECK(mn.rdev == makedev(8, 1));
  const OpRecord sl = logged(OpKind::kSymlink, "/d/sl", "", [&](const Caller& c) {
    must(e.fs->symlink(c, d.ino, "sl", "f"));
  });
  CHECK(sl.name == "f");
  const OpRecord ln = logged(OpKind::kLink, "/d/f", "/hard", [&](const Caller& c) {
    must(e.fs->link(c, f.ino, kRootIno, "hard"));
  });
  CHECK(ln.ino == f.ino);
  const OpRecord wr = logged(OpKind::kWrite, "/d/f", "", [&](const Caller& c) {
    must(e.fs->write(c, f.ino, 3, std::string(300000, 'w')));
  });
  CHECK(wr.ino == f.ino);
  CHECK(wr.data_before.size() == 1);
  CHECK(wr.offset == 3);
  CHECK(wr.length == 300000);  // three blob-sized chunks, one record
  CHECK(wr.size == 300003);
  const OpRecord tr = logged(OpKind::kSetattr, "/d/f", "", [&](const Caller& c) {
    SetattrArgs a;
    a.mask = kSetSize;
    a.size = 1000;
    must(e.fs->setattr(c, f.ino, a));
  });
  CHECK(tr.size == 1000);
  CHECK(tr.data_before.size() == 1);
  CHECK(tr.offset == 1000);
  CHECK(tr.length == 299003);
  logged(OpKind::kSetattr, "/d", "", [&](const Caller& c) {
    SetattrArgs a;
    a.mask = kSetMode;
    a.mode = 0700;
    must(e.fs->setattr(c, d.ino, a));
  });
  const OpRecord fa = logged(OpKind::kFallocate, "/d/f", "", [&](const Caller& c) {
    REQUIRE_OK(e.fs->fallocate(c, f.ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 10, 20));
  });
  CHECK(fa.flags == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE));
  CHECK(fa.offset == 10);
  CHECK(fa.length == 20);
  const OpRecord sx = logged(OpKind::kSetxattr, "/d/f", "", [&](const Caller& c) {
    REQUIRE_OK(e.fs->setxattr(c, f.ino, "user.k", "v1", 0));
  });
  CHECK(sx.name == "user.k");
  logged(OpKind::kSetxattr, "/d/f", "", [&](const Caller& c) {
    REQUIRE_OK(e.fs->setxattr(c, f.ino, "user.k", "v2", XATTR_REPLACE));
  });
  logged(OpKind::kRemovexattr, "/d/f", "", [&](const Caller& c) {
    REQUIRE_OK(e.fs->removexattr(c, f.ino, "user.k"));
  });
  logged(OpKind::kMkdir, "/d/sub", "", [&](const Caller& c) { sub = must(e.fs->mkdir(c, d.ino, "sub", 0755)); });
  const OpRecord rn = logged(OpKind::kRename, "/hard", "/d/sub/hard2", [&](const Caller& c) {
    REQUIRE_OK(e.fs->rename(c, kRootIno, "hard", sub.ino, "hard2", 0));
  });
  CHECK(rn.ino == f.ino);
  logged(OpKind::kRename, "/d/sl", "/d/sub/hard2", [&](const Caller& c) {
    REQUIRE_OK(e.fs->rename(c, d.ino, "sl", sub.ino, "hard2", RENAME_EXCHANGE));
  });
  CHECK(e.log.back().flags == RENAME_EXCHANGE);
  logged(OpKind::kUnlink, "/d/f", "", [&](const Caller& c) { REQUIRE_OK(e.fs->unlink(c, d.ino, "f")); });
  logged(OpKind::kUnlink, "/d/sub/hard2", "", [&](const Caller& c) { REQUIRE_OK(e.fs->unlink(c, sub.ino, "hard2")); });
  logged(OpKind::kRmdir, "/d/sub", "", [&](const Caller& c) { REQUIRE_OK(e.fs->rmdir(c, d.ino, "sub")); });

  // What the hook saw is what the store holds, in order, with nothing else.
  ReadTxn txn = must(e.store->begin_read());
  std::vector<OpRecord> stored;
  REQUIRE_OK(oplog::scan(txn, {}, [&](const OpRecord& r) {
    stored.push_back(r);
    return true;
  }));
  REQUIRE(stored.size() == e.log.size());
  for (size_t i = 0; i < stored.size(); ++i) {
    CHECK(stored[i].seq == e.log[i].seq);
    CHECK(stored[i].ts_ns == e.log[i].ts_ns);
    CHECK(stored[i].kind == e.log[i].kind);
    CHECK(stored[i].path == e.log[i].path);
    CHECK(stored[i].path2 == e.log[i].path2);
    CHECK(stored[i].caller.comm == e.log[i].caller.comm);
  }
  e.require_healthy();
}

TEST_CASE("records carry the undo payload", "[fs][oplog]") {
  FsEnv e;
  Inode d = e.mkdir(kRootIno, "d");
  const Inode d_before = must(e.fs->getattr(d.ino));

  SECTION("create: the parent before, the new inode absent, the name absent") {
    Inode f = e.create(d.ino, "f");
    const OpRecord& r = e.last();
    const Inode* parent = inode_before(r, d.ino);
    REQUIRE(parent != nullptr);
    CHECK(*parent == d_before);
    CHECK(has_inode_before(r, f.ino, false));
    const DirentBefore* de = dirent_before(r, d.ino, "f");
    REQUIRE(de != nullptr);
    CHECK_FALSE(de->entry.has_value());
  }
  SECTION("mkdir: the parent's old link count") {
    e.mkdir(d.ino, "sub");
    const Inode* parent = inode_before(e.last(), d.ino);
    REQUIRE(parent != nullptr);
    CHECK(parent->nlink == 2);
  }
  SECTION("unlink: the old entry and the old inode") {
    Inode f = e.create(d.ino, "f");
    REQUIRE_OK(e.fs->unlink(kCaller, d.ino, "f"));
    const OpRecord& r = e.last();
    const DirentBefore* de = dirent_before(r, d.ino, "f");
    REQUIRE(de != nullptr);
    REQUIRE(de->entry.has_value());
    CHECK(de->entry->ino == f.ino);
    CHECK(de->entry->type == S_IFREG);
    const Inode* old = inode_before(r, f.ino);
    REQUIRE(old != nullptr);
    CHECK(old->nlink == 1);
    CHECK(has_inode_before(r, d.ino, true));
  }
  SECTION("rmdir: the old entry") {
    Inode sub = e.mkdir(d.ino, "sub");
    REQUIRE_OK(e.fs->rmdir(kCaller, d.ino, "sub"));
    const DirentBefore* de = dirent_before(e.last(), d.ino, "sub");
    REQUIRE(de != nullptr);
    REQUIRE(de->entry.has_value());
    CHECK(de->entry->ino == sub.ino);
    CHECK(de->entry->type == S_IFDIR);
  }
  SECTION("rename: both names before") {
    Inode f = e.create(d.ino, "f");
    Inode g = e.create(kRootIno, "g");
    REQUIRE_OK(e.fs->rename(kCaller, d.ino, "f", kRootIno, "g", 0));
    const OpRecord& r = e.last();
    const DirentBefore* src = dirent_before(r, d.ino, "f");
    const DirentBefore* dst = dirent_before(r, kRootIno, "g");
    REQUIRE(src != nullptr);
    REQUIRE(dst != nullptr);
    REQUIRE(src->entry.has_value());
    REQUIRE(dst->entry.has_value());
    CHECK(src->entry->ino == f.ino);
    CHECK(dst->entry->ino == g.ino);
    REQUIRE(inode_before(r, g.ino) != nullptr);
    CHECK(inode_before(r, g.ino)->nlink == 1);
  }
  SECTION("write: the replaced data pieces, and their bytes are still readable") {
    Inode f = e.create(d.ino, "f");
    e.write(f.ino, 0, std::string(1000, 'a'));
    const OpRecord& first = e.last();
    REQUIRE(first.data_before.size() == 1);
    CHECK(first.data_before[0].extents.empty());  // nothing was there
    CHECK(inode_before(first, f.ino)->size == 0);

    e.write(f.ino, 500, std::string(100, 'b'));
    const OpRecord& r = e.last();
    REQUIRE(r.data_before.size() == 1);
    CHECK(r.data_before[0].ino == f.ino);
    CHECK(r.offset == 500);
    CHECK(r.length == 100);
    REQUIRE(r.data_before[0].extents.size() == 1);
    const Extent& old = r.data_before[0].extents[0];
    CHECK(old.file_offset == 500);
    CHECK(old.blob_offset == 500);
    CHECK(old.length == 100);
    ReadTxn txn = must(e.store->begin_read());
    Blob b = must(txn.blob(old.blob));
    std::string bytes(b.length, '\0');
    REQUIRE_OK(e.store->segments().read({b.segment, b.offset}, bytes.data(), b.length));
    CHECK(bytes.substr(old.blob_offset, old.length) == std::string(100, 'a'));
    CHECK(b.refs == 3);  // head and tail still live, middle held by the log
  }
  SECTION("truncate: the cut-off data") {
    Inode f = e.create(d.ino, "f");
    e.write(f.ino, 0, std::string(1000, 'a'));
    e.truncate(f.ino, 10);
    const OpRecord& r = e.last();
    REQUIRE(r.data_before.size() == 1);
    const auto& cut = r.data_before[0].extents;
    REQUIRE(cut.size() == 1);
    CHECK(cut[0].file_offset == 10);
    CHECK(cut[0].blob_offset == 10);
    CHECK(cut[0].length == 990);
    CHECK(inode_before(r, f.ino)->size == 1000);
  }
  SECTION("xattrs: old values, or their absence") {
    Inode f = e.create(d.ino, "f");
    REQUIRE_OK(e.fs->setxattr(kCaller, f.ino, "user.k", "old", 0));
    REQUIRE(e.last().xattrs_before.size() == 1);
    CHECK_FALSE(e.last().xattrs_before[0].value.has_value());
    REQUIRE_OK(e.fs->setxattr(kCaller, f.ino, "user.k", "new", 0));
    REQUIRE(e.last().xattrs_before.size() == 1);
    CHECK(e.last().xattrs_before[0].ino == f.ino);
    CHECK(e.last().xattrs_before[0].name == "user.k");
    CHECK(e.last().xattrs_before[0].value == std::optional<std::string>("old"));
    REQUIRE_OK(e.fs->removexattr(kCaller, f.ino, "user.k"));
    REQUIRE(e.last().xattrs_before.size() == 1);
    CHECK(e.last().xattrs_before[0].value == std::optional<std::string>("new"));
  }
  SECTION("link: the inode with its old link count") {
    Inode f = e.create(d.ino, "f");
    must(e.fs->link(kCaller, f.ino, kRootIno, "l"));
    const OpRecord& r = e.last();
    REQUIRE(inode_before(r, f.ino) != nullptr);
    CHECK(inode_before(r, f.ino)->nlink == 1);
    const DirentBefore* de = dirent_before(r, kRootIno, "l");
    REQUIRE(de != nullptr);
    CHECK_FALSE(de->entry.has_value());
  }
  e.require_healthy();
}

// ============================================================ integrity

TEST_CASE("a damaged byte in a segment makes read EIO and check_store name the file", "[fs]") {
  FsEnv e;
  Inode d = e.mkdir(kRootIno, "docs");
  Inode victim = e.create(d.ino, "victim");
  Inode bystander = e.create(d.ino, "bystander");
  e.write(victim.ino, 0, std::string(5000, 'V'));
  e.write(bystander.ino, 0, std::string(5000, 'B'));
  REQUIRE_OK(e.fs->sync());
  e.require_healthy();

  // Locate the victim's bytes through the store's own tables.
  Blob b;
  {
    ReadTxn txn = must(e.store->begin_read());
    auto ext = must(txn.extents_in(victim.ino, 0, 5000));
    REQUIRE(ext.size() == 1);
    b = must(txn.blob(ext[0].blob));
  }
  char name[32];
  std::snprintf(name, sizeof name, "/%08u.seg", b.segment);
  const std::string seg = e.store_dir() + "/segments" + name;
  {
    std::vector<std::string> found;
    DIR* dir = ::opendir((e.store_dir() + "/segments").c_str());
    REQUIRE(dir != nullptr);
    while (dirent* de = ::readdir(dir))
      if (std::string(de->d_name).size() > 4) found.push_back(de->d_name);
    ::closedir(dir);
    REQUIRE(std::find(found.begin(), found.end(), std::string(name + 1)) != found.end());
  }
  int fd = ::open(seg.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  const off_t at = static_cast<off_t>(b.offset + 1234);
  char c = 0;
  REQUIRE(::pread(fd, &c, 1, at) == 1);
  REQUIRE(c == 'V');
  c ^= 0x01;
  REQUIRE(::pwrite(fd, &c, 1, at) == 1);
  ::close(fd);

  std::string buf(5000, '\0');
  auto r = e.fs->read(victim.ino, 0, 10, buf.data());  // even bytes far from the damage
  REQUIRE_ERR(r, EIO);
  CHECK(r.status().message().find("checksum") != std::string::npos);
  REQUIRE_ERR(e.fs->read(victim.ino, 1234, 1, buf.data()), EIO);
  CHECK(e.read_all(bystander.ino) == std::string(5000, 'B'));  // other files are fine

  CheckReport meta_only = must(check_store(*e.store, false));
  CHECK(meta_only.ok());  // the metadata is intact
  CheckReport rep = must(check_store(*e.store, true));
  REQUIRE_FALSE(rep.ok());
  REQUIRE(rep.problems.size() == 1);
  INFO(rep.problems[0]);
  CHECK(rep.problems[0].find("damaged") != std::string::npos);
  CHECK(rep.problems[0].find("/docs/victim") != std::string::npos);
  CHECK(rep.problems[0].find("bystander") == std::string::npos);
}

TEST_CASE("check_store finds no problems after a random workload", "[fs]") {
  FsEnv e;
  std::mt19937_64 rng(61);
  std::vector<uint64_t> dirs{kRootIno};
  auto pick_dir = [&] { return dirs[rng() % dirs.size()]; };
  auto pick_name = [&] { return "n" + std::to_string(rng() % 12); };
  size_t ok_ops = 0;
  for (int step = 0; step < 600; ++step) {
    uint64_t dir = pick_dir();
    std::string name = pick_name();
    Caller c{static_cast<uint32_t>(rng() % 3), 0, static_cast<uint32_t>(step), "w"};
    Status s;
    switch (rng() % 12) {
      case 0: {
        auto r = e.fs->mkdir(c, dir, name, 0755);
        if (r) dirs.push_back(r->ino);
        s = std::move(r).take_status();
        break;
      }
      case 1:
      case 2: s = e.fs->mknod(c, dir, name, S_IFREG | 0644, 0, OpKind::kCreate).take_status(); break;
      case 3: s = e.fs->unlink(c, dir, name); break;
      case 4: s = e.fs->rmdir(c, dir, name); break;
      case 5: s = e.fs->rename(c, dir, name, pick_dir(), pick_name(), rng() % 4 == 0 ? RENAME_EXCHANGE : 0); break;
      case 6: {
        auto l = e.fs->lookup(dir, name);
        s = l ? e.fs->link(c, l->ino, pick_dir(), pick_name()).take_status() : std::move(l).take_status();
        break;
      }
      case 7:
      case 8:
      case 9: {
        auto l = e.fs->lookup(dir, name);
        if (!l) break;
        s = e.fs->write(c, l->ino, rng() % 400000, roam::testing::random_bytes(rng, 1 + rng() % 150000))
                .take_status();
        break;
      }
      case 10: {
        auto l = e.fs->lookup(dir, name);
        if (!l || !S_ISREG(l->mode)) break;
        if (rng() % 2) {
          SetattrArgs a;
          a.mask = kSetSize;
          a.size = rng() % 300000;
          s = e.fs->setattr(c, l->ino, a).take_status();
        } else {
          s = e.fs->fallocate(c, l->ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, rng() % 300000,
                              1 + rng() % 100000);
        }
        break;
      }
      default: {
        auto l = e.fs->lookup(dir, name);
        if (!l) break;
        s = rng() % 3 ? e.fs->setxattr(c, l->ino, "user.x" + std::to_string(rng() % 3), "v", 0)
                      : e.fs->removexattr(c, l->ino, "user.x0");
      }
    }
    // Errors are expected (EEXIST, ENOENT, ENOTEMPTY, ...); internal corruption is not.
    INFO("step " << step << ": " << roam::testing::describe(s));
    REQUIRE(s.err() != EIO);
    if (s) ++ok_ops;
  }
  CheckReport rep = must(check_store(*e.store, true));
  for (const auto& p : rep.problems) UNSCOPED_INFO("problem: " << p);
  CHECK(rep.ok());
  CHECK(rep.log_records == e.log.size());
  CHECK(rep.bytes_verified > 0);
  CHECK(rep.live_inodes > 1);
  CHECK(ok_ops > 200);

  // and it still holds after closing and reopening the store
  e.fs.reset();
  e.store.reset();
  e.store = must(Store::open(e.store_dir(), {}));
  CheckReport again = must(check_store(*e.store, true));
  CHECK(again.ok());
  CHECK(again.log_records == rep.log_records);
}

TEST_CASE("concurrent callers: every mutation logged once, in order, store consistent", "[fs]") {
  FsEnv e;
  std::mutex log_mu;
  std::vector<OpRecord> seen;
  e.fs->set_commit_hook([&](const OpRecord& r) {
    std::lock_guard lock(log_mu);
    seen.push_back(r);
  });
  constexpr int kThreads = 4, kFiles = 8, kRounds = 15;
  std::atomic<int> succeeded{0}, failed{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; ++th) {
    threads.emplace_back([&, th] {
      std::mt19937_64 rng(70 + th);
      Caller c{static_cast<uint32_t>(th), 0, static_cast<uint32_t>(th), "t" + std::to_string(th)};
      auto d = e.fs->mkdir(c, kRootIno, "t" + std::to_string(th), 0755);
      if (!d) {
        ++failed;
        return;
      }
      ++succeeded;
      std::vector<std::string> contents(kFiles);
      std::vector<uint64_t> inos(kFiles);
      for (int i = 0; i < kFiles; ++i) {
        auto f = e.fs->mknod(c, d->ino, "f" + std::to_string(i), S_IFREG | 0644, 0, OpKind::kCreate);
        if (!f) {
          ++failed;
          return;
        }
        ++succeeded;
        inos[i] = f->ino;
      }
      for (int round = 0; round < kRounds; ++round) {
        int i = static_cast<int>(rng() % kFiles);
        std::string data = roam::testing::random_bytes(rng, 1 + rng() % 200000);
        uint64_t off = rng() % 100000;
        if (!e.fs->write(c, inos[i], off, data)) {
          ++failed;
          continue;
        }
        ++succeeded;
        if (contents[i].size() < off + data.size()) contents[i].resize(off + data.size(), '\0');
        contents[i].replace(off, data.size(), data);
        // reads run alongside the other threads' writes
        std::string buf(contents[i].size(), '\0');
        auto n = e.fs->read(inos[i], 0, buf.size(), buf.data());
        if (!n || *n != buf.size() || buf != contents[i]) ++failed;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failed == 0);
  REQUIRE(seen.size() == static_cast<size_t>(succeeded));
  std::sort(seen.begin(), seen.end(), [](const OpRecord& a, const OpRecord& b) { return a.seq < b.seq; });
  for (size_t i = 0; i < seen.size(); ++i) {
    CHECK(seen[i].seq == i + 1);  // no gaps, no duplicates
    if (i > 0) CHECK(seen[i].ts_ns > seen[i - 1].ts_ns);  // time order is seq order
  }
  e.require_healthy();
}

TEST_CASE("readdir pages and statfs", "[fs]") {
  FsEnv e;
  Inode d = e.mkdir(kRootIno, "d");
  std::set<std::string> made;
  for (int i = 0; i < 50; ++i) {
    std::string name = "entry" + std::to_string(i);
    e.create(d.ino, name);
    made.insert(name);
  }
  std::set<std::string> listed;
  std::string after;
  for (int pages = 0; pages < 100; ++pages) {
    auto page = must(e.fs->readdir(d.ino, after, 7));
    if (page.empty()) break;
    CHECK(page.size() <= 7);
    for (auto& [name, dent] : page) CHECK(listed.insert(name).second);  // never twice
    after = page.back().first;
  }
  CHECK(listed == made);
  struct statvfs st = must(e.fs->statfs());
  CHECK(st.f_namemax == kNameMax);
  CHECK(st.f_files >= 52);
}
