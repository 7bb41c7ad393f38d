// POSIX ACLs on roamfs: the kernel enforces them (roamfs negotiates
// FUSE_CAP_POSIX_ACL), and roamfs keeps mode and ACL in step, inherits
// default ACLs and clears setgid exactly as the machine's own filesystem
// (ext4 under /tmp) does: each case runs on both and the outcomes must match.
// The changes are logged as xattr ops, and survive a remount.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <map>
#include <string>

#include "posix_helpers.h"

using namespace roamtest;

namespace {

constexpr uid_t kUser = 1001;       // owner of some files; in group kUser only
constexpr uid_t kNobody = 65534;    // the user an ACL locks out

// setfacl ARGS... on `path`; REQUIREs success.
void setfacl(const std::vector<std::string>& args, const std::string& path) {
  std::vector<std::string> argv = {"setfacl"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(path);
  ProcResult r = run(argv);
  INFO(r.describe());
  REQUIRE(r.exit_code() == 0);
}

// The mode and `getfacl` (numeric ids, no header) of `path`, on one line.
std::string acl_state(const std::string& path) {
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  ProcResult r = run({"getfacl", "-cnp", path});
  REQUIRE(r.exit_code() == 0);
  std::string acl = r.out;
  for (char& ch : acl)
    if (ch == '\n') ch = ' ';
  char mode[16];
  std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
  return std::string("mode ") + mode + " acl " + acl;
}

// Whether `uid` (primary group `gid`, no others) can open `path` for reading.
bool can_read_as(uid_t uid, gid_t gid, const std::string& path) {
  return in_child([&] {
           if (!become(uid, gid)) return 1;
           int fd = ::open(path.c_str(), O_RDONLY);
           if (fd < 0) return 2;
           ::close(fd);
           return 0;
         }) == 0;
}

// Runs `fn` as kUser and REQUIREs it to succeed.
void as_user(const std::function<bool()>& fn) {
  REQUIRE(in_child([&] {
            if (!become(kUser, kUser)) return 1;
            return fn() ? 0 : 2;
          }) == 0);
}

// The cases, each on its own names in `dir`.
void run_cases(const std::string& dir) {
  // An ACL that locks one user out of a world-readable file.
  write_file(dir + "/locked", "secret");
  REQUIRE_OK(::chmod((dir + "/locked").c_str(), 0644));
  setfacl({"-m", "u:" + std::to_string(kNobody) + ":---"}, dir + "/locked");
  // chmod after an extended ACL: the mask follows the group bits.
  write_file(dir + "/chmod", "x");
  setfacl({"-m", "u:" + std::to_string(kUser) + ":rwx"}, dir + "/chmod");
  REQUIRE_OK(::chmod((dir + "/chmod").c_str(), 0604));
  // An ACL no wider than the mode is no ACL: the mode takes it.
  write_file(dir + "/minimal", "x");
  setfacl({"-m", "u::rw,g::r,o::-"}, dir + "/minimal");
  // Default ACLs: a directory's new files and directories inherit them,
  // masked by the mode they are created with (not the umask).
  REQUIRE_OK(::mkdir((dir + "/inherit").c_str(), 0755));
  setfacl({"-d", "-m", "u:" + std::to_string(kUser) + ":rwx,g::rx,o::-"}, dir + "/inherit");
  const mode_t old_umask = ::umask(077);
  write_file(dir + "/inherit/file", "x");
  REQUIRE_OK(::mkdir((dir + "/inherit/sub").c_str(), 0750));
  REQUIRE_OK(::mknod((dir + "/inherit/fifo").c_str(), S_IFIFO | 0666, 0));
  ::umask(old_umask);
  // setfacl by an owner outside the file's group clears setgid.
  REQUIRE_OK(::mkdir((dir + "/owned").c_str(), 0777));
  write_file(dir + "/owned/sgid", "x");
  REQUIRE_OK(::chown((dir + "/owned/sgid").c_str(), kUser, 0));
  REQUIRE_OK(::chmod((dir + "/owned/sgid").c_str(), 02755));
  as_user([p = dir + "/owned/sgid"] { return run({"setfacl", "-m", "u:65534:r", p}).exit_code() == 0; });
  // Removing the ACL keeps the mode.
  write_file(dir + "/removed", "x");
  setfacl({"-m", "u:" + std::to_string(kUser) + ":rw"}, dir + "/removed");
  setfacl({"-b"}, dir + "/removed");
}

std::map<std::string, std::string> outcome(const std::string& dir) {
  std::map<std::string, std::string> m;
  for (const char* name : {"locked", "chmod", "minimal", "inherit", "inherit/file", "inherit/sub", "inherit/fifo",
                           "owned/sgid", "removed"})
    m[name] = acl_state(dir + "/" + name);
  m["locked: nobody reads"] = can_read_as(kNobody, kNobody, dir + "/locked") ? "yes" : "no";
  m["locked: user reads"] = can_read_as(kUser, kUser, dir + "/locked") ? "yes" : "no";
  return m;
}

}  // namespace

TEST_CASE("POSIX ACLs are enforced and kept in step with the mode as on a plain directory", "[integration]") {
  MountFixture fx;
  const TempTree ref_tree("acl-ref");
  run_cases(ref_tree.path);
  run_cases(fx.mnt());
  const auto expected = outcome(ref_tree.path);
  INFO("plain directory:\n" << render(expected));
  CHECK(render(outcome(fx.mnt())) == render(expected));
  fx.remount();
  CHECK(render(outcome(fx.mnt())) == render(expected));

  // The cases mean what their names say.
  CHECK(expected.at("locked: nobody reads") == "no");
  CHECK(expected.at("locked: user reads") == "yes");
  CHECK(expected.at("owned/sgid").rfind("mode 0755", 0) == 0);
  CHECK(expected.at("minimal").find("user:1001") == std::string::npos);

  // ACL changes are xattr ops in the op log.
  auto log = read_log(fx.mnt());
  Expect set;
  set.op = "setxattr";
  set.path = "/locked";
  set.details_has = "system.posix_acl_access";
  expect_logged(log, set);

  // A restore to before the ACL was removed brings it back, enforced.
  const long long removal = log.back().num("seq") + 1;
  setfacl({"-b"}, fx.path("locked"));
  REQUIRE(can_read_as(kNobody, kNobody, fx.path("locked")));
  ProcResult r = roamctl({"restore", fx.mnt(), "/locked", "--before-op", std::to_string(removal)});
  INFO(r.describe());
  REQUIRE(r.exit_code() == 0);
  CHECK(acl_state(fx.path("locked")) == expected.at("locked"));
  CHECK_FALSE(can_read_as(kNobody, kNobody, fx.path("locked")));
}

TEST_CASE("past views and restores bring back the ACLs of their moment, enforced as they were", "[integration]") {
  MountFixture fx;
  REQUIRE_OK(::chmod(fx.mnt().c_str(), 0755));
  const std::string nobody = std::to_string(kNobody);
  // Then: nobody is locked out of a world-readable file, and a directory's
  // default ACL lets kUser write what is made in it.
  write_synced(fx.path("locked"), "secret");
  REQUIRE_OK(::chmod(fx.path("locked").c_str(), 0644));
  setfacl({"-m", "u:" + nobody + ":---"}, fx.path("locked"));
  REQUIRE_OK(::mkdir(fx.path("shared").c_str(), 0755));
  setfacl({"-d", "-m", "u:" + std::to_string(kUser) + ":rwx"}, fx.path("shared"));
  write_synced(fx.path("shared/file"), "x");
  const std::string locked_then = acl_state(fx.path("locked"));
  const std::string shared_file_then = acl_state(fx.path("shared/file"));
  const long long then_op = last_seq(fx.mnt()) + 1;  // --before-op: everything so far
  const int64_t then = moment_after_change();

  // Later: nobody may read (the entry changed), then the ACL goes.
  setfacl({"-m", "u:" + nobody + ":r"}, fx.path("locked"));
  REQUIRE(can_read_as(kNobody, kNobody, fx.path("locked")));
  const int64_t opened = moment_after_change();
  setfacl({"-b"}, fx.path("locked"));
  setfacl({"-b"}, fx.path("shared/file"));
  REQUIRE(can_read_as(kNobody, kNobody, fx.path("locked")));
  const std::string then_view = fx.path(".history/" + epoch_arg(then));
  const std::string opened_view = fx.path(".history/" + epoch_arg(opened));

  // (a) Each past view shows and enforces its moment's ACL: nobody is denied
  // through the view of then, allowed through the later one and the live file.
  CHECK(acl_state(then_view + "/locked") == locked_then);
  CHECK(acl_state(then_view + "/shared/file") == shared_file_then);
  CHECK_FALSE(can_read_as(kNobody, kNobody, then_view + "/locked"));
  CHECK(can_read_as(kUser, kUser, then_view + "/locked"));
  CHECK(can_read_as(kNobody, kNobody, opened_view + "/locked"));
  CHECK(acl_state(opened_view + "/locked").find("user:" + nobody + ":r--") != std::string::npos);

  // (b) A restore brings the ACLs back, and the kernel, which had cached the
  // ACL-less file, enforces them at once and after a remount.
  restore_ok({"restore", fx.mnt(), "/", "--before-op", std::to_string(then_op)});
  CHECK(acl_state(fx.path("locked")) == locked_then);
  CHECK(acl_state(fx.path("shared/file")) == shared_file_then);
  CHECK_FALSE(can_read_as(kNobody, kNobody, fx.path("locked")));
  CHECK(can_read_as(kUser, kUser, fx.path("locked")));
  fx.remount();
  CHECK(acl_state(fx.path("locked")) == locked_then);
  CHECK_FALSE(can_read_as(kNobody, kNobody, fx.path("locked")));
  // The view of then still says the same after the restore.
  CHECK_FALSE(can_read_as(kNobody, kNobody, then_view + "/locked"));
}
