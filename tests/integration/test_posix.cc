// Ordinary system calls through a mounted roamfs, checked against what POSIX
// (and Linux) promise, and against the op log: each mutation must appear in
// `roamctl log MNT --json` with the right kind and path, attributed to the
// process that did it (for a write: the process that opened the file).
//
// Where a result could come from the kernel's caches (roamfs asks for long
// entry/attribute timeouts and the writeback cache), the test remounts and
// checks again, so that what is verified is what roamfs stored.
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <set>

#include "posix_helpers.h"

using namespace roamtest;

namespace {

constexpr long kFuseSuperMagic = 0x65735546;

struct stat lstat_of(const std::string& p) {
  struct stat st {};
  INFO("lstat " << p << ": " << std::strerror(errno));
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st;
}

int renameat2(const std::string& from, const std::string& to, unsigned flags) {
  return static_cast<int>(::syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags));
}

std::string pread_str(int fd, size_t len, off_t off) {
  std::string buf(len, '\0');
  size_t got = 0;
  while (got < len) {
    ssize_t n = ::pread(fd, buf.data() + got, len - got, off + static_cast<off_t>(got));
    REQUIRE(n >= 0);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  buf.resize(got);
  return buf;
}

void pwrite_all(int fd, const std::string& data, off_t off) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, off + static_cast<off_t>(done));
    INFO("pwrite at " << off + static_cast<off_t>(done) << ": " << std::strerror(errno));
    REQUIRE(n > 0);
    done += static_cast<size_t>(n);
  }
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  REQUIRE(d != nullptr);
  while (dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

// A valid POSIX ACL in the kernel's xattr encoding (version 2, entries of
// tag:u16 perm:u16 id:u32, little-endian), with ids of the *_OBJ/MASK/OTHER
// entries set to ACL_UNDEFINED_ID as the kernel writes them, so that it reads
// back byte for byte.
std::string acl_blob(uint32_t user_id, uint32_t group_id) {
  std::string s;
  auto u32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  auto u16 = [&](uint16_t v) {
    s.push_back(static_cast<char>(v & 0xff));
    s.push_back(static_cast<char>(v >> 8));
  };
  auto entry = [&](uint16_t tag, uint16_t perm, uint32_t id) { u16(tag), u16(perm), u32(id); };
  u32(2);                              // POSIX_ACL_XATTR_VERSION
  entry(0x01, 6, 0xFFFFFFFF);          // ACL_USER_OBJ rw-
  entry(0x02, 4, user_id);             // ACL_USER r--
  entry(0x04, 4, 0xFFFFFFFF);          // ACL_GROUP_OBJ r--
  entry(0x08, 6, group_id);            // ACL_GROUP rw-
  entry(0x10, 6, 0xFFFFFFFF);          // ACL_MASK rw-
  entry(0x20, 0, 0xFFFFFFFF);          // ACL_OTHER ---
  return s;
}

std::string get_xattr(const std::string& path, const char* name) {
  ssize_t n = ::lgetxattr(path.c_str(), name, nullptr, 0);
  INFO("lgetxattr " << path << " " << name << ": " << std::strerror(errno));
  REQUIRE(n >= 0);
  std::string v(static_cast<size_t>(n), '\0');
  n = ::lgetxattr(path.c_str(), name, v.data(), v.size());
  REQUIRE(n == static_cast<ssize_t>(v.size()));
  return v;
}

std::set<std::string> list_xattrs(const std::string& path) {
  ssize_t n = ::llistxattr(path.c_str(), nullptr, 0);
  REQUIRE(n >= 0);
  std::string buf(static_cast<size_t>(n), '\0');
  n = ::llistxattr(path.c_str(), buf.data(), buf.size());
  REQUIRE(n == static_cast<ssize_t>(buf.size()));
  std::set<std::string> names;
  for (size_t i = 0; i < buf.size();) {
    std::string name(buf.c_str() + i);
    i += name.size() + 1;
    names.insert(name);
  }
  return names;
}

int64_t ns_of(const timespec& t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }

int64_t now_ns() {
  timespec t{};
  ::clock_gettime(CLOCK_REALTIME, &t);
  return ns_of(t);
}

}  // namespace

TEST_CASE("create, read, write and O_APPEND", "[integration]") {
  MountFixture fx;
  const std::string f = fx.path("f");
  int fd = ::open(f.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0640);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, "hello", 5) == 5);
  REQUIRE(::close(fd) == 0);
  REQUIRE(read_file(f) == "hello");
  CHECK((lstat_of(f).st_mode & 07777) == 0640);
  CHECK(lstat_of(f).st_size == 5);
  REQUIRE_ERRNO(::open(f.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0640), EEXIST);

  fd = ::open(f.c_str(), O_WRONLY | O_APPEND);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, " world", 6) == 6);
  REQUIRE(::lseek(fd, 0, SEEK_SET) == 0);
  REQUIRE(::write(fd, "!", 1) == 1);  // O_APPEND ignores the file offset
  REQUIRE(::close(fd) == 0);
  REQUIRE(read_file(f) == "hello world!");

  fd = ::open(f.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  REQUIRE(::pwrite(fd, "J", 1, 0) == 1);
  char buf[64] = {};
  REQUIRE(::pread(fd, buf, sizeof buf, 0) == 12);
  CHECK(std::string(buf, 12) == "Jello world!");
  REQUIRE(::read(fd, buf, sizeof buf) == 12);  // the offset was not moved by pread/pwrite
  REQUIRE(::read(fd, buf, sizeof buf) == 0);   // end of file
  REQUIRE(::close(fd) == 0);

  fd = ::open(f.c_str(), O_WRONLY | O_TRUNC);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, "short", 5) == 5);
  REQUIRE(::close(fd) == 0);
  REQUIRE(read_file(f) == "short");

  fx.remount();
  REQUIRE(read_file(f) == "short");
  CHECK(lstat_of(f).st_size == 5);

  auto log = read_log(fx.mnt());
  expect_logged(log, by_me("create", "/f"));
  expect_logged(log, by_me("write", "/f"));
  Expect trunc = by_me("setattr", "/f");
  trunc.details_has = "size 0";
  expect_logged(log, trunc);
}

TEST_CASE("pwrite at random offsets matches a model", "[integration]") {
  MountFixture fx;
  const std::string f = fx.path("model");
  std::mt19937_64 rng(20261127);
  std::string model;
  int fd = ::open(f.c_str(), O_CREAT | O_RDWR, 0644);
  REQUIRE(fd >= 0);
  for (int i = 0; i < 300; ++i) {
    size_t len = 1 + rng() % (i % 10 == 0 ? 300000 : 9000);
    size_t off = rng() % (3 << 20);
    std::string data = random_bytes(rng, len);
    pwrite_all(fd, data, static_cast<off_t>(off));
    if (model.size() < off + len) model.resize(off + len, '\0');
    model.replace(off, len, data);
    if (i % 25 == 0) {  // spot reads, through the cache
      size_t roff = rng() % model.size();
      size_t rlen = std::min<size_t>(1 + rng() % 200000, model.size() - roff);
      INFO("read " << rlen << " at " << roff << " after " << i + 1 << " writes");
      REQUIRE(pread_str(fd, rlen, static_cast<off_t>(roff)) == model.substr(roff, rlen));
    }
  }
  REQUIRE(::fsync(fd) == 0);
  struct stat st {};
  REQUIRE(::fstat(fd, &st) == 0);
  CHECK(static_cast<size_t>(st.st_size) == model.size());
  REQUIRE(::close(fd) == 0);
  REQUIRE(read_file(f) == model);

  fx.remount();  // now every byte comes from the store
  CHECK(static_cast<size_t>(lstat_of(f).st_size) == model.size());
  std::string back = read_file(f);
  REQUIRE(back.size() == model.size());
  for (size_t i = 0; i < model.size(); i += 4096) {
    INFO("first difference in the 4 KiB block at " << i);
    REQUIRE(back.compare(i, 4096, model, i, 4096) == 0);
  }
  expect_logged(read_log(fx.mnt()), by_me("write", "/model"));
  ProcResult scrub = roamctl({"scrub", fx.mnt()});
  INFO(scrub.describe());
  CHECK(scrub.exit_code() == 0);
}

TEST_CASE("sparse files and a file larger than 4 GiB", "[integration]") {
  MountFixture fx;
  const std::string f = fx.path("sparse");
  const off_t big = 5LL << 30;
  const std::string tail(4096, 'T');
  const std::string mid = "middle of nowhere";
  int fd = ::open(f.c_str(), O_CREAT | O_RDWR, 0644);
  REQUIRE(fd >= 0);
  pwrite_all(fd, tail, big);
  pwrite_all(fd, mid, 1 << 20);
  REQUIRE(::fsync(fd) == 0);
  REQUIRE(::close(fd) == 0);

  auto check = [&] {
    struct stat st = lstat_of(f);
    REQUIRE(st.st_size == big + 4096);
    int rfd = ::open(f.c_str(), O_RDONLY);
    REQUIRE(rfd >= 0);
    CHECK(pread_str(rfd, 8192, 0) == std::string(8192, '\0'));
    CHECK(pread_str(rfd, 100, (1 << 20) - 50) == std::string(50, '\0') + mid + std::string(50 - mid.size(), '\0'));
    CHECK(pread_str(rfd, 8192, (4LL << 30) - 4096) == std::string(8192, '\0'));  // across 4 GiB
    CHECK(pread_str(rfd, 4096, big - 4096) == std::string(4096, '\0'));
    CHECK(pread_str(rfd, 8192, big) == tail);  // short read at end of file
    CHECK(pread_str(rfd, 10, big + 4096).empty());
    ::close(rfd);
  };
  check();
  fx.remount();
  check();
  Expect w = by_me("write", "/sparse");
  w.details_has = "offset " + std::to_string(big);
  expect_logged(read_log(fx.mnt()), w);
}

TEST_CASE("truncate up and down", "[integration]") {
  MountFixture fx;
  const std::string f = fx.path("t");
  std::mt19937_64 rng(7);
  const std::string data = random_bytes(rng, 100000);
  write_file(f, data);
  REQUIRE(::truncate(f.c_str(), 50000) == 0);
  CHECK(lstat_of(f).st_size == 50000);
  REQUIRE(read_file(f) == data.substr(0, 50000));
  REQUIRE(::truncate(f.c_str(), 200000) == 0);  // the old bytes must not come back
  std::string expect = data.substr(0, 50000) + std::string(150000, '\0');
  REQUIRE(read_file(f) == expect);

  int fd = ::open(f.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  REQUIRE(::ftruncate(fd, 12345) == 0);
  REQUIRE(::pwrite(fd, "x", 1, 20000) == 1);  // the gap after a shrink reads as zeros
  REQUIRE(::close(fd) == 0);
  expect = data.substr(0, 12345) + std::string(20000 - 12345, '\0') + "x";
  REQUIRE(read_file(f) == expect);
  REQUIRE(::truncate(f.c_str(), 0) == 0);
  REQUIRE(read_file(f).empty());
  REQUIRE(::truncate(f.c_str(), 3000) == 0);
  REQUIRE(read_file(f) == std::string(3000, '\0'));
  REQUIRE_OK(::mkdir(fx.path("dir").c_str(), 0755));
  REQUIRE_ERRNO(::truncate(fx.path("dir").c_str(), 0), EISDIR);

  fx.remount();
  REQUIRE(read_file(f) == std::string(3000, '\0'));
  auto log = read_log(fx.mnt());
  for (const char* size : {"size 50000", "size 200000", "size 12345", "size 0", "size 3000"}) {
    Expect e = by_me("setattr", "/t");
    e.details_has = size;
    expect_logged(log, e);
  }
}

TEST_CASE("mkdir, rmdir and ENOTEMPTY", "[integration]") {
  MountFixture fx;
  const std::string d = fx.path("d");
  const nlink_t root_links = lstat_of(fx.mnt()).st_nlink;
  REQUIRE_OK(::mkdir(d.c_str(), 0750));
  struct stat st = lstat_of(d);
  CHECK(S_ISDIR(st.st_mode));
  CHECK((st.st_mode & 07777) == 0750);
  CHECK(st.st_nlink == 2);
  CHECK(lstat_of(fx.mnt()).st_nlink == root_links + 1);
  REQUIRE_ERRNO(::mkdir(d.c_str(), 0755), EEXIST);
  REQUIRE_OK(::mkdir((d + "/sub").c_str(), 0755));
  CHECK(lstat_of(d).st_nlink == 3);
  write_file(d + "/file", "x");
  REQUIRE_ERRNO(::rmdir(d.c_str()), ENOTEMPTY);
  REQUIRE_ERRNO(::rmdir((d + "/file").c_str()), ENOTDIR);
  REQUIRE_ERRNO(::unlink((d + "/sub").c_str()), EISDIR);
  REQUIRE_ERRNO(::rmdir(fx.path("missing").c_str()), ENOENT);
  CHECK(list_dir(d) == std::vector<std::string>{".", "..", "file", "sub"});
  REQUIRE_OK(::rmdir((d + "/sub").c_str()));
  CHECK(lstat_of(d).st_nlink == 2);
  REQUIRE_ERRNO(::rmdir(d.c_str()), ENOTEMPTY);
  REQUIRE_OK(::unlink((d + "/file").c_str()));
  REQUIRE_OK(::rmdir(d.c_str()));
  REQUIRE_ERRNO(::access(d.c_str(), F_OK), ENOENT);
  CHECK(lstat_of(fx.mnt()).st_nlink == root_links);

  REQUIRE_OK(::mkdir(fx.path("keep").c_str(), 0700));
  REQUIRE_OK(::mkdir(fx.path("keep/inner").c_str(), 0700));
  fx.remount();
  CHECK(lstat_of(fx.path("keep")).st_nlink == 3);
  CHECK(lstat_of(fx.mnt()).st_nlink == root_links + 1);
  REQUIRE_ERRNO(::access(d.c_str(), F_OK), ENOENT);

  auto log = read_log(fx.mnt());
  expect_logged(log, by_me("mkdir", "/d"));
  expect_logged(log, by_me("mkdir", "/d/sub"));
  expect_logged(log, by_me("rmdir", "/d/sub"));
  expect_logged(log, by_me("rmdir", "/d"));
  expect_logged(log, by_me("unlink", "/d/file"));
}

TEST_CASE("rename, RENAME_NOREPLACE and RENAME_EXCHANGE", "[integration]") {
  MountFixture fx;
  auto p = [&](const char* rel) { return fx.path(rel); };
  write_file(p("a"), "A");
  write_file(p("b"), "B");
  write_file(p("c"), "C");
  REQUIRE_OK(::mkdir(p("d1").c_str(), 0755));
  REQUIRE_OK(::mkdir(p("d2").c_str(), 0755));
  REQUIRE_OK(::mkdir(p("d1/sub").c_str(), 0755));
  write_file(p("d1/sub/x"), "X");

  SECTION("plain renames") {
    REQUIRE_OK(::rename(p("a").c_str(), p("a2").c_str()));
    REQUIRE_ERRNO(::access(p("a").c_str(), F_OK), ENOENT);
    REQUIRE(read_file(p("a2")) == "A");
    REQUIRE_OK(::rename(p("a2").c_str(), p("b").c_str()));  // replaces b
    REQUIRE(read_file(p("b")) == "A");
    REQUIRE_ERRNO(::access(p("a2").c_str(), F_OK), ENOENT);
    REQUIRE_OK(::rename(p("d1/sub").c_str(), p("d2/moved").c_str()));  // a directory to another parent
    REQUIRE(read_file(p("d2/moved/x")) == "X");
    CHECK(lstat_of(p("d1")).st_nlink == 2);
    CHECK(lstat_of(p("d2")).st_nlink == 3);
    REQUIRE_ERRNO(::rename(p("d2").c_str(), p("d2/moved/into").c_str()), EINVAL);
    REQUIRE_ERRNO(::rename(p("c").c_str(), p("d1").c_str()), EISDIR);
    REQUIRE_ERRNO(::rename(p("d1").c_str(), p("c").c_str()), ENOTDIR);
    int rc = ::rename(p("d1").c_str(), p("d2").c_str());  // d2 is not empty
    CHECK(rc == -1);
    CHECK((errno == ENOTEMPTY || errno == EEXIST));
    REQUIRE_OK(::mkdir(p("empty").c_str(), 0755));
    REQUIRE_OK(::rename(p("d1").c_str(), p("empty").c_str()));  // onto an empty directory
    REQUIRE_ERRNO(::access(p("d1").c_str(), F_OK), ENOENT);
    REQUIRE_ERRNO(::rename(p("nothing").c_str(), p("x").c_str()), ENOENT);

    fx.remount();
    REQUIRE(read_file(p("b")) == "A");
    REQUIRE(read_file(p("d2/moved/x")) == "X");
    CHECK(lstat_of(p("d2")).st_nlink == 3);
    CHECK(lstat_of(p("empty")).st_nlink == 2);
    REQUIRE_ERRNO(::access(p("a").c_str(), F_OK), ENOENT);
    REQUIRE_ERRNO(::access(p("d1").c_str(), F_OK), ENOENT);
    auto log = read_log(fx.mnt());
    expect_logged(log, by_me("rename", "/a", "/a2"));
    expect_logged(log, by_me("rename", "/a2", "/b"));
    expect_logged(log, by_me("rename", "/d1/sub", "/d2/moved"));
    expect_logged(log, by_me("rename", "/d1", "/empty"));
  }

  SECTION("RENAME_NOREPLACE") {
    REQUIRE_ERRNO(renameat2(p("a"), p("b"), RENAME_NOREPLACE), EEXIST);
    REQUIRE(read_file(p("a")) == "A");
    REQUIRE(read_file(p("b")) == "B");
    REQUIRE_OK(renameat2(p("a"), p("new"), RENAME_NOREPLACE));
    REQUIRE(read_file(p("new")) == "A");
    REQUIRE_ERRNO(::access(p("a").c_str(), F_OK), ENOENT);
    fx.remount();
    REQUIRE(read_file(p("new")) == "A");
    REQUIRE(read_file(p("b")) == "B");
    Expect e = by_me("rename", "/a", "/new");
    e.details_has = "noreplace";
    expect_logged(read_log(fx.mnt()), e);
  }

  SECTION("RENAME_EXCHANGE") {
    const ino_t ino_a = lstat_of(p("a")).st_ino, ino_b = lstat_of(p("b")).st_ino;
    REQUIRE_OK(renameat2(p("a"), p("b"), RENAME_EXCHANGE));
    REQUIRE(read_file(p("a")) == "B");
    REQUIRE(read_file(p("b")) == "A");
    CHECK(lstat_of(p("a")).st_ino == ino_b);
    CHECK(lstat_of(p("b")).st_ino == ino_a);
    REQUIRE_ERRNO(renameat2(p("a"), p("absent"), RENAME_EXCHANGE), ENOENT);
    REQUIRE_ERRNO(renameat2(p("a"), p("b"), RENAME_EXCHANGE | RENAME_NOREPLACE), EINVAL);
    // A file and a directory in different parents swap; link counts follow.
    REQUIRE_OK(renameat2(p("c"), p("d1/sub"), RENAME_EXCHANGE));
    CHECK(S_ISDIR(lstat_of(p("c")).st_mode));
    REQUIRE(read_file(p("c/x")) == "X");
    REQUIRE(read_file(p("d1/sub")) == "C");
    const nlink_t root_links = lstat_of(fx.mnt()).st_nlink;
    CHECK(lstat_of(p("d1")).st_nlink == 2);
    fx.remount();
    REQUIRE(read_file(p("a")) == "B");
    REQUIRE(read_file(p("b")) == "A");
    REQUIRE(read_file(p("c/x")) == "X");
    REQUIRE(read_file(p("d1/sub")) == "C");
    CHECK(lstat_of(p("d1")).st_nlink == 2);
    CHECK(lstat_of(fx.mnt()).st_nlink == root_links);
    auto log = read_log(fx.mnt());
    Expect e = by_me("rename", "/a", "/b");
    e.details_has = "exchange";
    expect_logged(log, e);
    expect_logged(log, by_me("rename", "/c", "/d1/sub"));
  }
  ProcResult scrub = roamctl({"scrub", fx.mnt()});
  INFO(scrub.describe());
  CHECK(scrub.exit_code() == 0);
}

TEST_CASE("hard links", "[integration]") {
  MountFixture fx;
  const std::string a = fx.path("a"), b = fx.path("b");
  REQUIRE_OK(::mkdir(fx.path("d").c_str(), 0755));
  const std::string c = fx.path("d/c");
  write_file(a, "one");
  REQUIRE_OK(::link(a.c_str(), b.c_str()));
  REQUIRE_OK(::link(a.c_str(), c.c_str()));
  CHECK(lstat_of(a).st_nlink == 3);
  CHECK(lstat_of(b).st_ino == lstat_of(a).st_ino);
  CHECK(lstat_of(c).st_ino == lstat_of(a).st_ino);
  REQUIRE_ERRNO(::link(a.c_str(), b.c_str()), EEXIST);
  REQUIRE_ERRNO(::link(fx.path("d").c_str(), fx.path("dlink").c_str()), EPERM);
  int fd = ::open(b.c_str(), O_WRONLY | O_APPEND);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, "+two", 4) == 4);
  REQUIRE(::close(fd) == 0);
  REQUIRE(read_file(a) == "one+two");
  REQUIRE(read_file(c) == "one+two");
  REQUIRE_OK(::unlink(a.c_str()));  // the primary name goes; the others remain
  CHECK(lstat_of(b).st_nlink == 2);
  REQUIRE(read_file(b) == "one+two");
  fx.remount();
  CHECK(lstat_of(b).st_nlink == 2);
  CHECK(lstat_of(c).st_nlink == 2);
  CHECK(lstat_of(c).st_ino == lstat_of(b).st_ino);
  REQUIRE(read_file(c) == "one+two");
  REQUIRE_ERRNO(::access(a.c_str(), F_OK), ENOENT);
  // The log names a file by a name it still has.
  fd = ::open(c.c_str(), O_WRONLY | O_APPEND);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, "+three", 6) == 6);
  REQUIRE(::close(fd) == 0);
  REQUIRE_OK(::unlink(b.c_str()));
  CHECK(lstat_of(c).st_nlink == 1);
  REQUIRE(read_file(c) == "one+two+three");

  auto log = read_log(fx.mnt());
  expect_logged(log, by_me("link", "/a", "/b"));
  expect_logged(log, by_me("link", "/a", "/d/c"));
  expect_logged(log, by_me("unlink", "/a"));
  expect_logged(log, by_me("unlink", "/b"));
  // The last write happened after /a was gone: it must name /b or /d/c.
  const LogRecord* last_write = nullptr;
  for (const auto& r : log)
    if (r.get("op") == "write") last_write = &r;
  REQUIRE(last_write != nullptr);
  INFO(last_write->line);
  CHECK((last_write->get("path") == "/b" || last_write->get("path") == "/d/c"));
  ProcResult scrub = roamctl({"scrub", fx.mnt()});
  INFO(scrub.describe());
  CHECK(scrub.exit_code() == 0);
}

TEST_CASE("symbolic links", "[integration]") {
  MountFixture fx;
  write_file(fx.path("target"), "pointed at");
  const std::string s = fx.path("s");
  REQUIRE_OK(::symlink("target", s.c_str()));
  char buf[8192] = {};
  REQUIRE(::readlink(s.c_str(), buf, sizeof buf) == 6);
  CHECK(std::string(buf, 6) == "target");
  struct stat st = lstat_of(s);
  CHECK(S_ISLNK(st.st_mode));
  CHECK(st.st_size == 6);
  REQUIRE(read_file(s) == "pointed at");
  REQUIRE_ERRNO(::symlink("x", s.c_str()), EEXIST);
  REQUIRE_OK(::symlink("nowhere/at/all", fx.path("dangling").c_str()));
  struct stat ignored {};
  REQUIRE_ERRNO(::stat(fx.path("dangling").c_str(), &ignored), ENOENT);
  const std::string long_target(4095, 'L');
  REQUIRE_OK(::symlink(long_target.c_str(), fx.path("long").c_str()));
  const std::string odd_target = "../with spaces/\n/ünïcode";
  REQUIRE_OK(::symlink(odd_target.c_str(), fx.path("odd").c_str()));

  fx.remount();
  REQUIRE(::readlink(s.c_str(), buf, sizeof buf) == 6);
  CHECK(std::string(buf, 6) == "target");
  ssize_t n = ::readlink(fx.path("long").c_str(), buf, sizeof buf);
  REQUIRE(n == 4095);
  CHECK(std::string(buf, 4095) == long_target);
  n = ::readlink(fx.path("odd").c_str(), buf, sizeof buf);
  REQUIRE(n == static_cast<ssize_t>(odd_target.size()));
  CHECK(std::string(buf, static_cast<size_t>(n)) == odd_target);
  CHECK(lstat_of(fx.path("long")).st_size == 4095);
  auto log = read_log(fx.mnt());
  expect_logged(log, by_me("symlink", "/s"));
  Expect e = by_me("symlink", "/odd");
  e.details_has = odd_target;
  expect_logged(log, e);
}

TEST_CASE("fifos, device nodes and unix sockets", "[integration]") {
  MountFixture fx;
  const std::string fifo = fx.path("fifo"), chr = fx.path("null"), blk = fx.path("blk"), sock = fx.path("sock");
  REQUIRE_OK(::mkfifo(fifo.c_str(), 0644));
  CHECK(S_ISFIFO(lstat_of(fifo).st_mode));
  CHECK((lstat_of(fifo).st_mode & 07777) == 0644);
  REQUIRE_OK(::mknod(chr.c_str(), S_IFCHR | 0600, makedev(1, 3)));
  REQUIRE_OK(::mknod(blk.c_str(), S_IFBLK | 0600, makedev(7, 1)));
  CHECK(S_ISCHR(lstat_of(chr).st_mode));
  CHECK(lstat_of(chr).st_rdev == makedev(1, 3));
  CHECK(S_ISBLK(lstat_of(blk).st_mode));
  CHECK(lstat_of(blk).st_rdev == makedev(7, 1));

  // The fifo works as a fifo.
  pid_t writer = ::fork();
  REQUIRE(writer >= 0);
  if (writer == 0) {
    int fd = ::open(fifo.c_str(), O_WRONLY);
    ::_exit(fd >= 0 && ::write(fd, "through the pipe", 16) == 16 ? 0 : 1);
  }
  int rfd = ::open(fifo.c_str(), O_RDONLY);
  REQUIRE(rfd >= 0);
  std::string got;
  char buf[64];
  for (ssize_t n; (n = ::read(rfd, buf, sizeof buf)) > 0;) got.append(buf, static_cast<size_t>(n));
  ::close(rfd);
  int wst = 0;
  REQUIRE(::waitpid(writer, &wst, 0) == writer);
  CHECK(WIFEXITED(wst));
  CHECK(got == "through the pipe");

  // A unix socket bound in the mount accepts a connection.
  int srv = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(srv >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  REQUIRE(sock.size() < sizeof addr.sun_path);
  std::strcpy(addr.sun_path, sock.c_str());
  REQUIRE_OK(::bind(srv, reinterpret_cast<sockaddr*>(&addr), sizeof addr));
  REQUIRE_OK(::listen(srv, 1));
  CHECK(S_ISSOCK(lstat_of(sock).st_mode));
  int cli = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE_OK(::connect(cli, reinterpret_cast<sockaddr*>(&addr), sizeof addr));
  int conn = ::accept(srv, nullptr, nullptr);
  REQUIRE(conn >= 0);
  REQUIRE(::write(cli, "ping", 4) == 4);
  REQUIRE(::read(conn, buf, 4) == 4);
  CHECK(std::string(buf, 4) == "ping");
  ::close(conn), ::close(cli), ::close(srv);
  REQUIRE_ERRNO(::bind(::socket(AF_UNIX, SOCK_STREAM, 0), reinterpret_cast<sockaddr*>(&addr), sizeof addr),
                EADDRINUSE);

  fx.remount();
  CHECK(S_ISFIFO(lstat_of(fifo).st_mode));
  CHECK(S_ISSOCK(lstat_of(sock).st_mode));
  CHECK(lstat_of(chr).st_rdev == makedev(1, 3));
  CHECK(lstat_of(blk).st_rdev == makedev(7, 1));
  auto log = read_log(fx.mnt());
  for (const char* path : {"/fifo", "/null", "/blk", "/sock"}) expect_logged(log, by_me("mknod", path));
}

TEST_CASE("chmod, chown and utimensat", "[integration]") {
  MountFixture fx;
  const std::string f = fx.path("f");
  write_file(f, "data");
  REQUIRE_OK(::chmod(f.c_str(), 04751));
  CHECK((lstat_of(f).st_mode & 07777) == 04751);
  REQUIRE_OK(::chown(f.c_str(), 1234, 5678));  // clears the setuid bit
  CHECK(lstat_of(f).st_uid == 1234u);
  CHECK(lstat_of(f).st_gid == 5678u);
  CHECK((lstat_of(f).st_mode & 07777) == 0751);
  REQUIRE_OK(::chown(f.c_str(), static_cast<uid_t>(-1), 42));  // group only
  CHECK(lstat_of(f).st_uid == 1234u);
  CHECK(lstat_of(f).st_gid == 42u);
  REQUIRE_OK(::symlink("f", fx.path("s").c_str()));
  REQUIRE_OK(::lchown(fx.path("s").c_str(), 77, 88));
  CHECK(lstat_of(fx.path("s")).st_uid == 77u);
  CHECK(lstat_of(f).st_uid == 1234u);

  timespec times[2] = {{1000000000, 123456789}, {1500000000, 987654321}};
  REQUIRE_OK(::utimensat(AT_FDCWD, f.c_str(), times, 0));
  struct stat st = lstat_of(f);
  CHECK(ns_of(st.st_atim) == 1000000000123456789LL);
  CHECK(ns_of(st.st_mtim) == 1500000000987654321LL);

  // atime now, mtime untouched.
  timespec now_omit[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
  int64_t before = now_ns();
  REQUIRE_OK(::utimensat(AT_FDCWD, f.c_str(), now_omit, 0));
  int64_t after = now_ns();
  st = lstat_of(f);
  CHECK(ns_of(st.st_mtim) == 1500000000987654321LL);
  CHECK(ns_of(st.st_atim) >= before - 1000000000LL);
  CHECK(ns_of(st.st_atim) <= after + 1000000000LL);
  const int64_t atime_now = ns_of(st.st_atim);

  // atime untouched, mtime set.
  timespec omit_set[2] = {{0, UTIME_OMIT}, {2000000000, 5}};
  REQUIRE_OK(::utimensat(AT_FDCWD, f.c_str(), omit_set, 0));
  st = lstat_of(f);
  CHECK(ns_of(st.st_atim) == atime_now);
  CHECK(ns_of(st.st_mtim) == 2000000000000000005LL);

  // Times of a symlink itself.
  timespec link_times[2] = {{111, 1}, {222, 2}};
  REQUIRE_OK(::utimensat(AT_FDCWD, fx.path("s").c_str(), link_times, AT_SYMLINK_NOFOLLOW));
  CHECK(ns_of(lstat_of(fx.path("s")).st_mtim) == 222000000002LL);
  CHECK(ns_of(lstat_of(f).st_mtim) == 2000000000000000005LL);

  fx.remount();
  st = lstat_of(f);
  CHECK((st.st_mode & 07777) == 0751);
  CHECK(st.st_uid == 1234u);
  CHECK(st.st_gid == 42u);
  CHECK(ns_of(st.st_atim) == atime_now);
  CHECK(ns_of(st.st_mtim) == 2000000000000000005LL);
  CHECK(lstat_of(fx.path("s")).st_uid == 77u);
  CHECK(lstat_of(fx.path("s")).st_gid == 88u);
  CHECK(ns_of(lstat_of(fx.path("s")).st_mtim) == 222000000002LL);

  auto log = read_log(fx.mnt());
  Expect e = by_me("setattr", "/f");
  e.details_has = "mode 4751";
  expect_logged(log, e);
  e.details_has = "uid 1234 gid 5678";
  expect_logged(log, e);
  e.details_has = "atime mtime";
  expect_logged(log, e);
  e.details_has = "atime";
  expect_logged(log, e);
  e.details_has = "gid 42";
  expect_logged(log, e);
  Expect l = by_me("setattr", "/s");
  l.details_has = "uid 77 gid 88";
  expect_logged(log, l);
}

TEST_CASE("setgid directories pass their group on", "[integration]") {
  MountFixture fx;
  const std::string d = fx.path("shared");
  REQUIRE_OK(::mkdir(d.c_str(), 0777));
  REQUIRE_OK(::chown(d.c_str(), 0, 4242));
  REQUIRE_OK(::chmod(d.c_str(), 02777));
  CHECK((lstat_of(d).st_mode & 07777) == 02777);
  write_file(d + "/file", "x");
  REQUIRE_OK(::mkdir((d + "/sub").c_str(), 0755));
  REQUIRE_OK(::mknod((d + "/fifo").c_str(), S_IFIFO | 0644, 0));
  REQUIRE_OK(::symlink("file", (d + "/link").c_str()));
  // ...also for a file made by another user.
  REQUIRE(in_child([&] {
            if (!become(1001, 1001)) return 1;
            int fd = ::open((d + "/theirs").c_str(), O_CREAT | O_WRONLY, 0644);
            return fd >= 0 ? 0 : 2;
          }) == 0);
  // Outside a setgid directory, the creator's group.
  write_file(fx.path("plain"), "y");

  auto check = [&] {
    CHECK(lstat_of(d + "/file").st_gid == 4242u);
    CHECK(lstat_of(d + "/sub").st_gid == 4242u);
    CHECK((lstat_of(d + "/sub").st_mode & S_ISGID) != 0);
    CHECK((lstat_of(d + "/file").st_mode & S_ISGID) == 0);
    CHECK(lstat_of(d + "/fifo").st_gid == 4242u);
    CHECK(lstat_of(d + "/link").st_gid == 4242u);
    CHECK(lstat_of(d + "/theirs").st_gid == 4242u);
    CHECK(lstat_of(d + "/theirs").st_uid == 1001u);
    CHECK(lstat_of(fx.path("plain")).st_gid == ::getegid());
  };
  check();
  fx.remount();
  check();
  Expect e;
  e.op = "create";
  e.path = "/shared/theirs";
  e.uid = 1001;
  expect_logged(read_log(fx.mnt()), e);
}

TEST_CASE("sticky directories protect other users' files", "[integration]") {
  MountFixture fx;
  const std::string t = fx.path("tmp");
  REQUIRE_OK(::mkdir(t.c_str(), 0777));
  REQUIRE_OK(::chmod(t.c_str(), 01777));
  REQUIRE((lstat_of(t).st_mode & 07777) == 01777);
  const std::string f1 = t + "/of1001", f2 = t + "/of1002";
  REQUIRE(in_child([&] {
            if (!become(1001, 1001)) return 1;
            int fd = ::open(f1.c_str(), O_CREAT | O_WRONLY, 0666);
            if (fd < 0) return 2;
            return ::write(fd, "mine", 4) == 4 && ::close(fd) == 0 ? 0 : 3;
          }) == 0);
  REQUIRE(in_child([&] {
            if (!become(1002, 1002)) return 1;
            int fd = ::open(f2.c_str(), O_CREAT | O_WRONLY, 0666);
            return fd >= 0 ? 0 : 2;
          }) == 0);
  CHECK(lstat_of(f1).st_uid == 1001u);
  // 1002 may neither delete nor rename 1001's file, though the directory is world-writable.
  CHECK(in_child([&] {
          if (!become(1002, 1002)) return 1;
          if (::unlink(f1.c_str()) == 0) return 2;
          if (errno != EPERM) return 3;
          if (::rename(f1.c_str(), (t + "/stolen").c_str()) == 0) return 4;
          if (errno != EPERM) return 5;
          if (::rename(f2.c_str(), f1.c_str()) == 0) return 6;  // nor replace it
          if (errno != EPERM) return 7;
          return 0;
        }) == 0);
  REQUIRE(read_file(f1) == "mine");
  // The owner may.
  CHECK(in_child([&] {
          if (!become(1001, 1001)) return 1;
          return ::unlink(f1.c_str()) == 0 ? 0 : 2;
        }) == 0);
  REQUIRE_ERRNO(::access(f1.c_str(), F_OK), ENOENT);
  // Root may delete anyone's.
  REQUIRE_OK(::unlink(f2.c_str()));
  // Without the sticky bit, 1002 could have.
  REQUIRE_OK(::chmod(t.c_str(), 0777));
  REQUIRE(in_child([&] {
            if (!become(1001, 1001)) return 1;
            return ::open(f1.c_str(), O_CREAT | O_WRONLY, 0644) >= 0 ? 0 : 2;
          }) == 0);
  CHECK(in_child([&] {
          if (!become(1002, 1002)) return 1;
          return ::unlink(f1.c_str()) == 0 ? 0 : 2;
        }) == 0);

  auto log = read_log(fx.mnt());
  Expect e;
  e.op = "unlink";
  e.path = "/tmp/of1001";
  e.uid = 1001;
  expect_logged(log, e);
  e.uid = 1002;
  expect_logged(log, e);
  // No record of an unlink that was refused: two unlinks of of1001 in all.
  int unlinks = 0;
  for (const auto& r : log)
    if (r.get("op") == "unlink" && r.get("path") == "/tmp/of1001") ++unlinks;
  CHECK(unlinks == 2);
}

TEST_CASE("extended attributes and POSIX ACLs", "[integration]") {
  MountFixture fx;
  const std::string f = fx.path("f");
  write_file(f, "x");
  REQUIRE_OK(::setxattr(f.c_str(), "user.plain", "value", 5, 0));
  const std::string binary("\0\x01\xff binary \0 with nuls\n", 24);
  REQUIRE_OK(::setxattr(f.c_str(), "user.binary", binary.data(), binary.size(), 0));
  REQUIRE_OK(::setxattr(f.c_str(), "user.empty", "", 0, 0));
  const std::string big(16000, 'b');
  REQUIRE_OK(::setxattr(f.c_str(), "user.big", big.data(), big.size(), 0));
  CHECK(get_xattr(f, "user.plain") == "value");
  CHECK(get_xattr(f, "user.binary") == binary);
  CHECK(get_xattr(f, "user.empty").empty());
  CHECK(get_xattr(f, "user.big") == big);
  REQUIRE_ERRNO(::setxattr(f.c_str(), "user.plain", "v", 1, XATTR_CREATE), EEXIST);
  REQUIRE_ERRNO(::setxattr(f.c_str(), "user.absent", "v", 1, XATTR_REPLACE), ENODATA);
  REQUIRE_OK(::setxattr(f.c_str(), "user.plain", "replaced", 8, XATTR_REPLACE));
  CHECK(get_xattr(f, "user.plain") == "replaced");
  char small[2];
  REQUIRE_ERRNO(::getxattr(f.c_str(), "user.plain", small, sizeof small), ERANGE);
  REQUIRE_ERRNO(::getxattr(f.c_str(), "user.absent", small, sizeof small), ENODATA);
  CHECK(list_xattrs(f) == std::set<std::string>{"user.plain", "user.binary", "user.empty", "user.big"});
  REQUIRE_OK(::removexattr(f.c_str(), "user.empty"));
  REQUIRE_ERRNO(::removexattr(f.c_str(), "user.empty"), ENODATA);
  REQUIRE_OK(::setxattr(f.c_str(), "trusted.roam", "t", 1, 0));
  CHECK(get_xattr(f, "trusted.roam") == "t");

  // POSIX ACLs, set as xattrs and read back byte for byte.
  const std::string acl = acl_blob(1000, 2000);
  REQUIRE_OK(::setxattr(f.c_str(), "system.posix_acl_access", acl.data(), acl.size(), 0));
  CHECK(get_xattr(f, "system.posix_acl_access") == acl);
  REQUIRE_OK(::mkdir(fx.path("d").c_str(), 0755));
  const std::string dacl = acl_blob(3000, 4000);
  REQUIRE_OK(::setxattr(fx.path("d").c_str(), "system.posix_acl_default", dacl.data(), dacl.size(), 0));
  CHECK(get_xattr(fx.path("d"), "system.posix_acl_default") == dacl);

  fx.remount();
  CHECK(get_xattr(f, "user.plain") == "replaced");
  CHECK(get_xattr(f, "user.binary") == binary);
  CHECK(get_xattr(f, "user.big") == big);
  CHECK(get_xattr(f, "trusted.roam") == "t");
  CHECK(get_xattr(f, "system.posix_acl_access") == acl);
  CHECK(get_xattr(fx.path("d"), "system.posix_acl_default") == dacl);
  std::set<std::string> names = list_xattrs(f);
  CHECK(names.count("user.plain") == 1);
  CHECK(names.count("user.empty") == 0);
  CHECK(names.count("system.posix_acl_access") == 1);

  auto log = read_log(fx.mnt());
  Expect e = by_me("setxattr", "/f");
  e.details_has = "user.binary (24 bytes)";
  expect_logged(log, e);
  e.details_has = "system.posix_acl_access";
  expect_logged(log, e);
  Expect r = by_me("removexattr", "/f");
  r.details_has = "user.empty";
  expect_logged(log, r);
  Expect d = by_me("setxattr", "/d");
  d.details_has = "system.posix_acl_default";
  expect_logged(log, d);
}

TEST_CASE("statfs", "[integration]") {
  MountFixture fx;
  struct statvfs sv {};
  REQUIRE_OK(::statvfs(fx.mnt().c_str(), &sv));
  CHECK(sv.f_namemax == 255);
  CHECK(sv.f_bsize > 0);
  CHECK(sv.f_blocks > 0);
  CHECK(sv.f_bavail <= sv.f_bfree);
  CHECK(sv.f_bfree <= sv.f_blocks);
  struct statfs sf {};
  REQUIRE_OK(::statfs(fx.mnt().c_str(), &sf));
  CHECK(sf.f_type == kFuseSuperMagic);
  CHECK(sf.f_namelen == 255);
}

TEST_CASE("flock and fcntl locks between processes", "[integration]") {
  MountFixture fx;
  const std::string f = fx.path("lockme");
  write_file(f, std::string(100, 'l'));
  int fd = ::open(f.c_str(), O_RDWR);
  REQUIRE(fd >= 0);

  SECTION("flock") {
    REQUIRE_OK(::flock(fd, LOCK_EX));
    CHECK(in_child([&] {
            int cfd = ::open(f.c_str(), O_RDWR);
            if (cfd < 0) return 1;
            if (::flock(cfd, LOCK_EX | LOCK_NB) == 0) return 2;
            if (errno != EWOULDBLOCK) return 3;
            if (::flock(cfd, LOCK_SH | LOCK_NB) == 0) return 4;
            return 0;
          }) == 0);
    REQUIRE_OK(::flock(fd, LOCK_SH));  // downgrade: others may share
    CHECK(in_child([&] {
            int cfd = ::open(f.c_str(), O_RDWR);
            if (cfd < 0) return 1;
            if (::flock(cfd, LOCK_SH | LOCK_NB) != 0) return 2;
            if (::flock(cfd, LOCK_EX | LOCK_NB) == 0) return 3;
            return 0;
          }) == 0);
    REQUIRE_OK(::flock(fd, LOCK_UN));
    CHECK(in_child([&] {
            int cfd = ::open(f.c_str(), O_RDWR);
            return cfd >= 0 && ::flock(cfd, LOCK_EX | LOCK_NB) == 0 ? 0 : 1;
          }) == 0);
  }

  SECTION("fcntl record locks") {
    struct flock lk {};
    lk.l_type = F_WRLCK;
    lk.l_whence = SEEK_SET;
    lk.l_start = 0;
    lk.l_len = 10;
    REQUIRE_OK(::fcntl(fd, F_SETLK, &lk));
    const pid_t me = ::getpid();
    CHECK(in_child([&] {
            int cfd = ::open(f.c_str(), O_RDWR);
            if (cfd < 0) return 1;
            struct flock c {};
            c.l_type = F_WRLCK;
            c.l_whence = SEEK_SET;
            c.l_start = 5;
            c.l_len = 10;
            if (::fcntl(cfd, F_SETLK, &c) == 0) return 2;
            if (errno != EAGAIN && errno != EACCES) return 3;
            struct flock q = c;
            if (::fcntl(cfd, F_GETLK, &q) != 0) return 4;
            if (q.l_type != F_WRLCK || q.l_pid != me || q.l_start != 0 || q.l_len != 10) return 5;
            c.l_start = 20;  // a range nobody holds
            if (::fcntl(cfd, F_SETLK, &c) != 0) return 6;
            c.l_type = F_RDLCK;
            c.l_start = 0;
            if (::fcntl(cfd, F_SETLK, &c) == 0) return 7;  // read lock against our write lock
            return 0;
          }) == 0);
    lk.l_type = F_UNLCK;
    REQUIRE_OK(::fcntl(fd, F_SETLK, &lk));
    CHECK(in_child([&] {
            int cfd = ::open(f.c_str(), O_RDWR);
            struct flock c {};
            c.l_type = F_WRLCK;
            c.l_whence = SEEK_SET;
            c.l_len = 0;  // whole file
            return cfd >= 0 && ::fcntl(cfd, F_SETLK, &c) == 0 ? 0 : 1;
          }) == 0);
    // OFD locks as well.
    struct flock ofd {};
    ofd.l_type = F_WRLCK;
    ofd.l_whence = SEEK_SET;
    ofd.l_len = 1;
    REQUIRE_OK(::fcntl(fd, F_OFD_SETLK, &ofd));
    int fd2 = ::open(f.c_str(), O_RDWR);
    REQUIRE(fd2 >= 0);
    REQUIRE_ERRNO(::fcntl(fd2, F_OFD_SETLK, &ofd), EAGAIN);
    ::close(fd2);
  }
  ::close(fd);
}

TEST_CASE("name length limits", "[integration]") {
  MountFixture fx;
  const std::string n255(255, 'n'), n256(256, 'n');
  const std::string p255 = fx.path(n255), p256 = fx.path(n256);
  write_file(p255, "long name");
  REQUIRE(read_file(p255) == "long name");
  auto names = list_dir(fx.mnt());
  CHECK(std::find(names.begin(), names.end(), n255) != names.end());
  const std::string other255(255, 'o');
  REQUIRE_OK(::rename(p255.c_str(), fx.path(other255).c_str()));
  REQUIRE_OK(::mkdir(fx.path(std::string(255, 'd')).c_str(), 0755));
  REQUIRE_OK(::symlink(other255.c_str(), fx.path(std::string(255, 's')).c_str()));
  REQUIRE(read_file(fx.path(std::string(255, 's'))) == "long name");

  struct stat st {};
  REQUIRE_ERRNO(::open(p256.c_str(), O_CREAT | O_WRONLY, 0644), ENAMETOOLONG);
  REQUIRE_ERRNO(::stat(p256.c_str(), &st), ENAMETOOLONG);
  REQUIRE_ERRNO(::mkdir(p256.c_str(), 0755), ENAMETOOLONG);
  REQUIRE_ERRNO(::mknod(p256.c_str(), S_IFIFO | 0644, 0), ENAMETOOLONG);
  REQUIRE_ERRNO(::symlink("x", p256.c_str()), ENAMETOOLONG);
  REQUIRE_ERRNO(::link(fx.path(other255).c_str(), p256.c_str()), ENAMETOOLONG);
  REQUIRE_ERRNO(::rename(fx.path(other255).c_str(), p256.c_str()), ENAMETOOLONG);
  REQUIRE_ERRNO(::unlink(p256.c_str()), ENAMETOOLONG);
  REQUIRE_ERRNO(::rmdir(p256.c_str()), ENAMETOOLONG);

  fx.remount();
  REQUIRE(read_file(fx.path(other255)) == "long name");
  auto log = read_log(fx.mnt());
  expect_logged(log, by_me("create", "/" + n255));
  expect_logged(log, by_me("rename", "/" + n255, "/" + other255));
  for (const auto& r : log) CHECK(r.get("path").find(n256) == std::string::npos);
}

TEST_CASE("fsync and fdatasync", "[integration]") {
  MountFixture fx;
  const std::string f = fx.path("synced");
  int fd = ::open(f.c_str(), O_CREAT | O_RDWR, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, "durable", 7) == 7);
  REQUIRE_OK(::fsync(fd));
  REQUIRE(::pwrite(fd, "D", 1, 0) == 1);
  REQUIRE_OK(::fdatasync(fd));
  REQUIRE_OK(::syncfs(fd));
  REQUIRE_OK(::close(fd));
  int dfd = ::open(fx.mnt().c_str(), O_RDONLY | O_DIRECTORY);
  REQUIRE(dfd >= 0);
  REQUIRE_OK(::fsync(dfd));
  REQUIRE_OK(::fdatasync(dfd));
  ::close(dfd);
  fd = ::open(f.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  REQUIRE_OK(::fsync(fd));  // on a read-only descriptor too
  ::close(fd);
  // fsync made it durable: even a SIGKILL now loses nothing.
  fx.kill9();
  fx.mount();
  REQUIRE(read_file(f) == "Durable");
}

TEST_CASE("the log names the process that did each mutation", "[integration]") {
  MountFixture fx;
  const std::string d = fx.path("d");
  // A child with a recognisable name does a series of mutations.
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::prctl(PR_SET_NAME, "roam-worker", 0, 0, 0);
    int rc = 0;
    if (::mkdir(d.c_str(), 0755) != 0) rc = 1;
    int fd = ::open((d + "/f").c_str(), O_CREAT | O_WRONLY, 0644);
    if (fd < 0 || ::write(fd, "abc", 3) != 3 || ::close(fd) != 0) rc = 2;
    if (::chmod((d + "/f").c_str(), 0600) != 0) rc = 3;
    if (::rename((d + "/f").c_str(), (d + "/g").c_str()) != 0) rc = 4;
    if (::setxattr((d + "/g").c_str(), "user.k", "v", 1, 0) != 0) rc = 5;
    if (::symlink("g", (d + "/s").c_str()) != 0) rc = 6;
    if (::link((d + "/g").c_str(), (d + "/h").c_str()) != 0) rc = 7;
    if (::unlink((d + "/h").c_str()) != 0) rc = 8;
    ::_exit(rc);
  }
  int st = 0;
  REQUIRE(::waitpid(child, &st, 0) == child);
  REQUIRE(WIFEXITED(st));
  REQUIRE(WEXITSTATUS(st) == 0);

  // The opener, not the process that wrote, is who a write is attributed to:
  // "roam-opener" opens, a child "roam-writer" inherits the descriptor and
  // writes, the opener fsyncs and closes.
  pid_t opener = ::fork();
  REQUIRE(opener >= 0);
  if (opener == 0) {
    ::prctl(PR_SET_NAME, "roam-opener", 0, 0, 0);
    int fd = ::open(fx.path("shared").c_str(), O_CREAT | O_WRONLY, 0644);
    if (fd < 0) ::_exit(1);
    pid_t writer = ::fork();
    if (writer == 0) {
      ::prctl(PR_SET_NAME, "roam-writer", 0, 0, 0);
      ::_exit(::write(fd, "written by the child", 20) == 20 ? 0 : 1);
    }
    int wst = 0;
    ::waitpid(writer, &wst, 0);
    if (!WIFEXITED(wst) || WEXITSTATUS(wst) != 0) ::_exit(2);
    if (::fsync(fd) != 0 || ::close(fd) != 0) ::_exit(3);
    ::_exit(0);
  }
  REQUIRE(::waitpid(opener, &st, 0) == opener);
  REQUIRE(WIFEXITED(st));
  REQUIRE(WEXITSTATUS(st) == 0);
  REQUIRE(read_file(fx.path("shared")) == "written by the child");

  auto log = read_log(fx.mnt());
  auto by_child = [&](const char* op, const char* path, const char* path2 = "") {
    Expect e;
    e.op = op;
    e.path = path;
    e.path2 = path2;
    e.pid = child;
    e.comm = "roam-worker";
    e.uid = 0;
    return e;
  };
  expect_logged(log, by_child("mkdir", "/d"));
  expect_logged(log, by_child("create", "/d/f"));
  expect_logged(log, by_child("write", "/d/f"));
  expect_logged(log, by_child("setattr", "/d/f"));
  expect_logged(log, by_child("rename", "/d/f", "/d/g"));
  expect_logged(log, by_child("setxattr", "/d/g"));
  expect_logged(log, by_child("symlink", "/d/s"));
  expect_logged(log, by_child("link", "/d/g", "/d/h"));
  expect_logged(log, by_child("unlink", "/d/h"));
  Expect w;
  w.op = "write";
  w.path = "/shared";
  w.pid = opener;
  w.comm = "roam-opener";
  expect_logged(log, w);
  // Nothing in this log came from anyone but these processes (not the
  // kernel's flusher, not roamfs itself).
  for (const auto& r : log) {
    INFO(r.line);
    const std::string comm = r.get("comm");
    CHECK((comm == "roam-worker" || comm == "roam-opener" || comm == "roam-writer"));
  }
  // Records are in order: seq increases by one, time never decreases.
  for (size_t i = 1; i < log.size(); ++i) {
    CHECK(log[i].num("seq") == log[i - 1].num("seq") + 1);
    CHECK(log[i].num("ts_ns") > log[i - 1].num("ts_ns"));
  }
  // Filters agree with the whole log.
  auto writes = read_log(fx.mnt(), {"--op", "write"});
  for (const auto& r : writes) CHECK(r.get("op") == "write");
  CHECK(writes.size() == static_cast<size_t>(std::count_if(log.begin(), log.end(), [](const LogRecord& r) {
          return r.get("op") == "write";
        })));
  auto under_d = read_log(fx.mnt(), {"--path", fx.path("d")});
  CHECK(!under_d.empty());
  for (const auto& r : under_d) {
    INFO(r.line);
    CHECK((r.get("path").rfind("/d", 0) == 0 || r.get("path2").rfind("/d", 0) == 0));
  }
}

TEST_CASE("roamctl on a mount point reads the mounted store, even with a file named FORMAT in it", "[integration]") {
  MountFixture fx;
  write_file(fx.path("FORMAT"), "a user's file, not a store marker");
  std::vector<LogRecord> log = read_log(fx.mnt());
  bool created = false;
  for (const auto& r : log) created |= r.get("op") == "create" && r.get("path") == "/FORMAT";
  INFO(log.size() << " records");
  CHECK(created);
}

TEST_CASE("open(O_TMPFILE): a file with no name until linkat gives it one", "[integration]") {
  MountFixture fx;
  REQUIRE_OK(::mkdir(fx.path("d").c_str(), 0755));
  const int dirfd = ::open(fx.path("d").c_str(), O_RDONLY | O_DIRECTORY);
  REQUIRE(dirfd >= 0);
  const int fd = ::openat(dirfd, ".", O_TMPFILE | O_RDWR, 0640);
  INFO("open(O_TMPFILE): " << std::strerror(errno));
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, "no name yet", 11) == 11);
  struct stat st {};
  REQUIRE_OK(::fstat(fd, &st));
  CHECK(st.st_nlink == 0);
  CHECK(S_ISREG(st.st_mode));
  const mode_t umask_now = ::umask(0);
  ::umask(umask_now);
  CHECK((st.st_mode & 07777) == (0640 & ~umask_now));
  CHECK(list_dir(fx.path("d")) == std::vector<std::string>{".", ".."});

  REQUIRE_OK(::linkat(fd, "", dirfd, "named", AT_EMPTY_PATH));
  REQUIRE_OK(::fstat(fd, &st));
  CHECK(st.st_nlink == 1);
  CHECK(lstat_of(fx.path("d/named")).st_ino == st.st_ino);
  // Linked once, it is a file like any other: a second name is a plain link.
  REQUIRE_OK(::linkat(fd, "", dirfd, "second", AT_EMPTY_PATH));
  CHECK(lstat_of(fx.path("d/named")).st_nlink == 2);
  ::close(fd);

  // With O_EXCL it may never get a name (the kernel refuses), and when closed
  // it is gone.
  const int excl = ::openat(dirfd, ".", O_TMPFILE | O_EXCL | O_WRONLY, 0600);
  REQUIRE(excl >= 0);
  REQUIRE_ERRNO(::linkat(excl, "", dirfd, "never", AT_EMPTY_PATH), ENOENT);
  ::close(excl);
  ::close(dirfd);
  CHECK(list_dir(fx.path("d")) == std::vector<std::string>{".", "..", "named", "second"});

  // O_TMPFILE in .history is EROFS, as every change there.
  REQUIRE_ERRNO(::open(fx.path(".history/now").c_str(), O_TMPFILE | O_RDWR, 0600), EROFS);

  auto log = read_log(fx.mnt());
  Expect made = by_me("tmpfile", "/d");
  expect_logged(log, made);
  expect_logged(log, by_me("link", "", "/d/named"));

  fx.remount();
  CHECK(read_file(fx.path("d/named")) == "no name yet");
  CHECK(lstat_of(fx.path("d/named")).st_nlink == 2);
}
