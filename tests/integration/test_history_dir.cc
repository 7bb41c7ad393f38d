// The `.history` directory of a live mount (fuse/history_dir.h,
// docs/restore.md "Time travel"): old versions read by time, the directory
// hidden from the root's listing, the moments a listing offers, EROFS on
// every kind of change, past permissions enforced by the kernel, inode
// numbers that never meet live ones, retention (ESTALE), and checksums (EIO).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>
#include <thread>
#include <utility>

#include "posix_helpers.h"

using namespace roamtest;

namespace {

std::set<std::string> names_in(const std::string& dir) {
  std::set<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  REQUIRE(d != nullptr);
  while (dirent* e = ::readdir(d)) names.insert(e->d_name);
  ::closedir(d);
  return names;
}

struct stat stat_of(const std::string& path) {
  struct stat st {};
  INFO("stat " << path << ": " << std::strerror(errno));
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st;
}

}  // namespace

TEST_CASE("an overwritten file's old content is read through .history/TIME", "[integration]") {
  MountFixture fx;
  ::mkdir(fx.path("docs").c_str(), 0755);
  write_synced(fx.path("docs/thesis.txt"), "chapter one");
  const int64_t t1 = moment_after_change();
  write_synced(fx.path("docs/thesis.txt"), "chapter one, rewritten badly");
  write_synced(fx.path("docs/new.txt"), "made later");

  CHECK(read_file(fx.path(".history/" + epoch_arg(t1) + "/docs/thesis.txt")) == "chapter one");
  CHECK(read_file(fx.path(".history/" + iso_arg(t1) + "/docs/thesis.txt")) == "chapter one");
  CHECK(read_file(fx.path(".history/now/docs/thesis.txt")) == "chapter one, rewritten badly");
  CHECK(read_file(fx.path("docs/thesis.txt")) == "chapter one, rewritten badly");
  // What did not exist then is not there, and a view lists what was.
  REQUIRE_ERRNO(::access(fx.path(".history/" + epoch_arg(t1) + "/docs/new.txt").c_str(), F_OK), ENOENT);
  CHECK(names_in(fx.path(".history/" + epoch_arg(t1) + "/docs")) == std::set<std::string>{".", "..", "thesis.txt"});
  // A relative TIME: two seconds ago the disk existed, an hour ago it did not.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(read_file(fx.path(".history/-0.05s/docs/new.txt")) == "made later");
  REQUIRE_ERRNO(::access(fx.path(".history/-1h").c_str(), F_OK), ENOENT);
  REQUIRE_ERRNO(::access(fx.path(".history/not-a-time").c_str(), F_OK), ENOENT);
  // A copy back is an ordinary copy.
  write_file(fx.path("docs/thesis.restored"), read_file(fx.path(".history/" + epoch_arg(t1) + "/docs/thesis.txt")));
  CHECK(read_file(fx.path("docs/thesis.restored")) == "chapter one");
  fx.unmount();
}

TEST_CASE(".history is reachable by name but absent from the root's listing", "[integration]") {
  MountFixture fx;
  write_synced(fx.path("a"), "x");
  CHECK(names_in(fx.mnt()).count(".history") == 0);
  const struct stat st = stat_of(fx.path(".history"));
  CHECK(S_ISDIR(st.st_mode));
  CHECK((st.st_mode & 07777) == 0555);
  // Creating or removing the name itself is refused.
  REQUIRE_ERRNO(::mkdir(fx.path(".history").c_str(), 0755), EEXIST);
  REQUIRE_ERRNO(::rmdir(fx.path(".history").c_str()), EROFS);
  REQUIRE_ERRNO(::rename(fx.path("a").c_str(), fx.path(".history").c_str()), EISDIR);
  ::mkdir(fx.path("d").c_str(), 0755);
  REQUIRE_ERRNO(::rename(fx.path("d").c_str(), fx.path(".history").c_str()), EROFS);
  fx.unmount();
}

TEST_CASE("a disk's own .history in its root wins over time travel, and nothing of it is hidden", "[integration]") {
  // tcsh keeps its history in ~/.history; a disk can hold one made while
  // time travel was off (or from before it existed).
  MountFixture fx(MountOptions{.extra_args = {"--no-history-dir"}});
  REQUIRE_ERRNO(::access(fx.path(".history/now").c_str(), F_OK), ENOENT);
  write_synced(fx.path(".history"), "echo hello\n");
  fx.remount({});
  CHECK(fx.roamfs_log().find("holds its own .history") != std::string::npos);
  CHECK(names_in(fx.mnt()).count(".history") == 1);
  CHECK(read_file(fx.path(".history")) == "echo hello\n");
  write_synced(fx.path(".history"), "echo hello\nls\n");
  CHECK(read_file(fx.path(".history")) == "echo hello\nls\n");
  REQUIRE_ERRNO(::access(fx.path(".history/now").c_str(), F_OK), ENOTDIR);
  // Moved out of the way, it stays the user's file, and time travel is back
  // (after a remount: the kernel remembers the name as the file).
  REQUIRE(::rename(fx.path(".history").c_str(), fx.path("history.tcsh").c_str()) == 0);
  fx.remount();
  CHECK(read_file(fx.path("history.tcsh")) == "echo hello\nls\n");
  CHECK(S_ISDIR(stat_of(fx.path(".history/now")).st_mode));
  CHECK(read_file(fx.path(".history/now/history.tcsh")) == "echo hello\nls\n");
  REQUIRE_ERRNO(::open(fx.path(".history").c_str(), O_WRONLY | O_CREAT, 0644), EISDIR);
  fx.unmount();
}

TEST_CASE("listing .history offers minutes the disk holds, each a view of that moment", "[integration]") {
  const int64_t minute = int64_t{60} * 1'000'000'000;
  // The disk is made and "early" written within one minute: a disk made just
  // before a full minute would hold that minute too (it failed so once).
  if (minute - wall_ns() % minute < 5'000'000'000)
    std::this_thread::sleep_for(std::chrono::nanoseconds(minute - wall_ns() % minute + 100'000'000));
  MountFixture fx;
  write_synced(fx.path("early"), "before the minute");
  // A fresh disk holds no listed moment until the next full minute.
  const int64_t next_minute = (wall_ns() / minute + 1) * minute;
  std::this_thread::sleep_for(std::chrono::nanoseconds(next_minute - wall_ns() + 50'000'000));
  write_synced(fx.path("late"), "after the minute");

  std::set<std::string> listed = names_in(fx.path(".history"));
  listed.erase("."), listed.erase("..");
  REQUIRE(listed.size() == 1);
  const std::string name = *listed.begin();
  CHECK(name.size() == std::string("2026-12-04T23:00Z").size());
  CHECK(name.back() == 'Z');
  CHECK(read_file(fx.path(".history/" + name + "/early")) == "before the minute");
  REQUIRE_ERRNO(::access(fx.path(".history/" + name + "/late").c_str(), F_OK), ENOENT);
  CHECK(stat_of(fx.path(".history/" + name)).st_ino == stat_of(fx.path(".history/" + epoch_arg(next_minute))).st_ino);
  fx.unmount();
}

TEST_CASE("nothing in .history can be changed: EROFS", "[integration]") {
  MountFixture fx;
  ::mkdir(fx.path("d").c_str(), 0777);
  write_synced(fx.path("d/f"), "old");
  ::setxattr(fx.path("d/f").c_str(), "user.tag", "v", 1, 0);
  const int64_t t = moment_after_change();
  const std::string view = fx.path(".history/" + epoch_arg(t));
  const std::string f = view + "/d/f";
  REQUIRE(read_file(f) == "old");

  REQUIRE_ERRNO(::open(f.c_str(), O_WRONLY), EROFS);
  REQUIRE_ERRNO(::open(f.c_str(), O_RDWR), EROFS);
  REQUIRE_ERRNO(::open(f.c_str(), O_RDONLY | O_TRUNC), EROFS);
  REQUIRE_ERRNO(::open((view + "/d/new").c_str(), O_CREAT | O_WRONLY, 0644), EROFS);
  REQUIRE_ERRNO(::mkdir((view + "/d/sub").c_str(), 0755), EROFS);
  REQUIRE_ERRNO(::mkdir(fx.path(".history/newdir").c_str(), 0755), EROFS);
  REQUIRE_ERRNO(::unlink(f.c_str()), EROFS);
  REQUIRE_ERRNO(::rmdir((view + "/d").c_str()), EROFS);
  REQUIRE_ERRNO(::rename(f.c_str(), (view + "/d/g").c_str()), EROFS);
  REQUIRE_ERRNO(::rename(f.c_str(), fx.path("d/g").c_str()), EROFS);
  REQUIRE_ERRNO(::rename(fx.path("d/f").c_str(), (view + "/d/g").c_str()), EROFS);
  REQUIRE_ERRNO(::link(f.c_str(), fx.path("d/g").c_str()), EROFS);
  REQUIRE_ERRNO(::symlink("f", (view + "/d/s").c_str()), EROFS);
  REQUIRE_ERRNO(::chmod(f.c_str(), 0600), EROFS);
  REQUIRE_ERRNO(::truncate(f.c_str(), 0), EROFS);
  REQUIRE_ERRNO(::setxattr(f.c_str(), "user.tag", "w", 1, 0), EROFS);
  REQUIRE_ERRNO(::removexattr(f.c_str(), "user.tag"), EROFS);
  char value[8] = {};
  CHECK(::getxattr(f.c_str(), "user.tag", value, sizeof value) == 1);
  CHECK(value[0] == 'v');
  // The live file is untouched by all that.
  CHECK(read_file(fx.path("d/f")) == "old");
  CHECK(names_in(fx.path("d")) == std::set<std::string>{".", "..", "f"});
  fx.unmount();
}

TEST_CASE("a file unreadable by a user then is unreadable through .history by that user", "[integration]") {
  MountFixture fx;
  REQUIRE_OK(::chmod(fx.mnt().c_str(), 0755));
  write_synced(fx.path("secret"), "root's then");
  REQUIRE_OK(::chmod(fx.path("secret").c_str(), 0600));
  write_synced(fx.path("shared"), "alice's then");
  REQUIRE_OK(::chown(fx.path("shared").c_str(), 1000, 1000));
  REQUIRE_OK(::chmod(fx.path("shared").c_str(), 0600));
  const int64_t t = moment_after_change();
  // Now the secret is open to all and the shared file is root's alone.
  REQUIRE_OK(::chmod(fx.path("secret").c_str(), 0644));
  REQUIRE_OK(::chown(fx.path("shared").c_str(), 0, 0));
  const std::string view = fx.path(".history/" + epoch_arg(t));
  CHECK((stat_of(view + "/secret").st_mode & 07777) == 0600);
  CHECK(stat_of(view + "/shared").st_uid == 1000u);

  const int as_alice = in_child([&] {
    if (!become(1000, 1000)) return 1;
    if (::open(fx.path("secret").c_str(), O_RDONLY) < 0) return 2;  // readable now
    errno = 0;
    if (::open((view + "/secret").c_str(), O_RDONLY) >= 0 || errno != EACCES) return 3;
    if (read_file(view + "/shared") != "alice's then") return 4;
    if (::open(fx.path("shared").c_str(), O_RDONLY) >= 0) return 5;  // not hers any more
    return 0;
  });
  CHECK(as_alice == 0);
  fx.unmount();
}

TEST_CASE("past inode numbers never meet live ones and stay put for one moment", "[integration]") {
  MountFixture fx;
  ::mkdir(fx.path("d").c_str(), 0755);
  write_synced(fx.path("d/f"), "1");
  const int64_t t = moment_after_change();
  const struct stat live = stat_of(fx.path("d/f"));
  const struct stat past = stat_of(fx.path(".history/" + epoch_arg(t) + "/d/f"));
  CHECK(live.st_ino != past.st_ino);
  CHECK((past.st_ino >> 63) == 1u);
  CHECK((live.st_ino >> 63) == 0u);
  // Two names of the same moment are one view: the same numbers.
  CHECK(stat_of(fx.path(".history/" + iso_arg(t) + "/d/f")).st_ino == past.st_ino);
  CHECK(stat_of(fx.path(".history/" + epoch_arg(t))).st_ino != stat_of(fx.mnt()).st_ino);
  fx.unmount();
}

TEST_CASE("a moment GC has dropped from the history is gone or stale, never wrong", "[integration]") {
  MountFixture fx;
  write_synced(fx.path("f"), "v1");
  write_synced(fx.path("g"), "g1");
  const int64_t t = moment_after_change();
  write_synced(fx.path("f"), "v2");
  write_synced(fx.path("g"), "g2");
  const std::string view = fx.path(".history/" + epoch_arg(t));
  REQUIRE(read_file(view + "/f") == "v1");
  struct Dir {  // held across the GC; closed before the fixture unmounts, whatever fails
    int fd;
    ~Dir() {
      if (fd >= 0) ::close(fd);
    }
  } dir{::open(view.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  REQUIRE(dir.fd >= 0);

  const ProcResult retention = roamctl({"retention", fx.mnt(), "--age", "1s"});
  INFO(retention.describe());
  REQUIRE(retention.exit_code() == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  write_synced(fx.path("later"), "the newest record, which GC keeps");
  const ProcResult gc = roamctl({"gc", fx.mnt()});
  INFO(gc.describe());
  REQUIRE(gc.exit_code() == 0);

  // A name not yet looked up no longer resolves (the kernel may keep the
  // ones it has, a fixed moment's for a day); a view already reached answers
  // ESTALE for what it has not shown yet, rather than a state rebuilt from
  // half a log.
  REQUIRE_ERRNO(::access(fx.path(".history/" + iso_arg(t)).c_str(), F_OK), ENOENT);
  REQUIRE_ERRNO(::openat(dir.fd, "g", O_RDONLY | O_CLOEXEC), ESTALE);
  CHECK(read_file(fx.path("g")) == "g2");
  ::close(std::exchange(dir.fd, -1));
  fx.unmount();
}

namespace {

// The segment file holding `bytes` (the first one that does), and where.
std::pair<std::string, off_t> find_in_segments(const std::string& store, const std::string& bytes) {
  for (const auto& entry : std::filesystem::directory_iterator(store + "/segments")) {
    const std::string content = read_file(entry.path());
    if (auto at = content.find(bytes); at != std::string::npos) return {entry.path(), static_cast<off_t>(at)};
  }
  return {"", -1};
}

}  // namespace

TEST_CASE("a damaged block of an old version is EIO through .history, and the live file reads on", "[integration]") {
  MountFixture fx;
  const std::string old_content = "the old version, " + std::string(4000, 'o') + " end of the old version";
  write_synced(fx.path("f"), old_content);
  const int64_t t = moment_after_change();
  write_synced(fx.path("f"), "the new version");
  const auto [segment, at] = find_in_segments(fx.store(), old_content);
  INFO("segment " << segment << " offset " << at);
  REQUIRE(at >= 0);
  const int fd = ::open(segment.c_str(), O_WRONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::pwrite(fd, "O", 1, at + 100) == 1);  // one byte of the old blob
  ::close(fd);

  const std::string past = fx.path(".history/" + epoch_arg(t) + "/f");
  const int in = ::open(past.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(in >= 0);
  char buf[8192];
  REQUIRE_ERRNO(::read(in, buf, sizeof buf), EIO);
  ::close(in);
  CHECK(read_file(fx.path("f")) == "the new version");
  CHECK(fx.roamfs_log().find("I/O error") != std::string::npos);
  fx.unmount();
}
