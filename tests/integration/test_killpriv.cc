// Taking away privileges: a write, truncate or O_TRUNC open by a process
// without CAP_FSETID, and a chown, clear setuid (and setgid with group
// execute) and remove the file capabilities (security.capability) — on roamfs
// exactly as on a plain directory of the machine's own filesystem. roamfs
// negotiates FUSE_HANDLE_KILLPRIV_V2, so it is roamfs, not the kernel, that
// clears the bits (fuse/device_io.h, Fs::kill_privileges).
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <cstdio>
#include <map>
#include <string>

#include "posix_helpers.h"

using namespace roamtest;

namespace {

constexpr uid_t kUser = 1001;  // not in group 0; a member of group kUser only

uint32_t mode_of(const std::string& p) {
  struct stat st {};
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

bool has_caps(const std::string& p) { return ::getxattr(p.c_str(), "security.capability", nullptr, 0) >= 0; }

// A file capability (CAP_NET_RAW permitted and effective), as setcap writes it.
void set_caps(const std::string& p) {
  vfs_cap_data caps{};
  caps.magic_etc = VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE;
  caps.data[0].permitted = 1u << CAP_NET_RAW;
  REQUIRE_OK(::setxattr(p.c_str(), "security.capability", &caps, XATTR_CAPS_SZ_2, 0));
}

// A file of `dir` with some data, this owner and mode (set after the owner,
// since chown clears the bits), and file capabilities if asked.
std::string make_file(const std::string& dir, const std::string& name, uint32_t mode, gid_t gid = 0,
                      bool caps = false) {
  const std::string p = dir + "/" + name;
  write_file(p, "0123456789");
  REQUIRE_OK(::chown(p.c_str(), 0, gid));
  if (caps) set_caps(p);
  REQUIRE_OK(::chmod(p.c_str(), mode));
  return p;
}

// Runs `fn` as kUser (no capabilities) and REQUIREs it to succeed.
void as_user(const std::function<bool()>& fn) {
  REQUIRE(in_child([&] {
            if (!become(kUser, kUser)) return 1;
            return fn() ? 0 : 2;
          }) == 0);
}

bool write_some(const std::string& p, int extra_flags = 0) {
  int fd = ::open(p.c_str(), O_WRONLY | extra_flags);
  if (fd < 0) return false;
  bool ok = ::pwrite(fd, "abc", 3, 2) == 3;
  return ::close(fd) == 0 && ok;
}

// Each case on its own file in `dir`; the names say what was done.
void run_cases(const std::string& dir) {
  // Writes by a process without CAP_FSETID.
  as_user([p = make_file(dir, "write-06777", 06777)] { return write_some(p); });
  // setgid without group execute marks mandatory locking: it stays (the writer
  // is in the file's group; see the note at the end of the file).
  as_user([p = make_file(dir, "write-02767-member", 02767, kUser)] { return write_some(p); });
  as_user([p = make_file(dir, "write-04777-caps", 04777, 0, true)] { return write_some(p); });
  as_user([p = make_file(dir, "write-0666-caps", 0666, 0, true)] { return write_some(p); });
  as_user([p = make_file(dir, "write-again-06777", 06777)] { return write_some(p) && write_some(p); });
  // ...and by root, who keeps them.
  REQUIRE(write_some(make_file(dir, "root-write-06777", 06777)));
  // Truncation.
  as_user([p = make_file(dir, "truncate-06777", 06777)] { return ::truncate(p.c_str(), 4) == 0; });
  // A writer outside the file's group takes setgid away even without group
  // execute (setattr_should_drop_sgid): by write, truncate and O_TRUNC.
  as_user([p = make_file(dir, "write-02766-outsider", 02766)] { return write_some(p); });
  as_user([p = make_file(dir, "truncate-02766-outsider", 02766)] { return ::truncate(p.c_str(), 4) == 0; });
  as_user([p = make_file(dir, "otrunc-02766-outsider", 02766)] {
    int fd = ::open(p.c_str(), O_WRONLY | O_TRUNC);
    return fd >= 0 && ::close(fd) == 0;
  });
  as_user([p = make_file(dir, "otrunc-04777", 04777)] {
    int fd = ::open(p.c_str(), O_WRONLY | O_TRUNC);
    return fd >= 0 && ::close(fd) == 0;
  });
  {
    const std::string p = make_file(dir, "otrunc-empty-06777", 06777);
    REQUIRE_OK(::truncate(p.c_str(), 0));  // by root, who keeps the bits: an empty file with them
    as_user([p] {
      int fd = ::open(p.c_str(), O_WRONLY | O_TRUNC);
      return fd >= 0 && ::close(fd) == 0;
    });
  }
  // chown, by root: setuid always goes, setgid with group execute.
  REQUIRE_OK(::chown(make_file(dir, "chown-06755", 06755).c_str(), 1234, 1234));
  REQUIRE_OK(::chown(make_file(dir, "chown-02745", 02745).c_str(), 1234, 1234));
  REQUIRE_OK(::chown(make_file(dir, "chown-same-04755", 04755).c_str(), static_cast<uid_t>(-1),
                     static_cast<gid_t>(-1)));
  REQUIRE_OK(::chown(make_file(dir, "chown-0755-caps", 0755, 0, true).c_str(), 1234, 1234));
  {
    const std::string d = dir + "/chown-dir-06755";
    REQUIRE_OK(::mkdir(d.c_str(), 0755));
    REQUIRE_OK(::chmod(d.c_str(), 06755));
    REQUIRE_OK(::chown(d.c_str(), 1234, 1234));  // directories keep theirs
  }
  // fallocate goes through the kernel's file_remove_privs too.
  as_user([p = make_file(dir, "fallocate-06777", 06777)] {
    int fd = ::open(p.c_str(), O_WRONLY);
    if (fd < 0) return false;
    bool ok = ::fallocate(fd, 0, 0, 8192) == 0;
    return ::close(fd) == 0 && ok;
  });
}

// name -> "mode MMMM caps yes|no" for every entry of `dir`.
std::map<std::string, std::string> outcome(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const char* name :
       {"write-06777", "write-02767-member", "write-04777-caps", "write-0666-caps", "write-again-06777",
        "root-write-06777", "truncate-06777", "write-02766-outsider", "truncate-02766-outsider",
        "otrunc-02766-outsider", "otrunc-04777", "otrunc-empty-06777",
        "chown-06755", "chown-02745", "chown-same-04755", "chown-0755-caps", "chown-dir-06755", "fallocate-06777"}) {
    const std::string p = dir + "/" + name;
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", mode_of(p));
    out[name] = std::string("mode ") + mode + " caps " + (has_caps(p) ? "yes" : "no");
  }
  return out;
}

}  // namespace

TEST_CASE("writes, truncates and chowns take away setuid, setgid and capabilities as on a plain directory",
          "[integration]") {
  MountFixture fx;
  const TempTree ref_tree("killpriv-ref");
  const std::string& ref = ref_tree.path;

  run_cases(ref);
  run_cases(fx.mnt());
  const auto expected = outcome(ref);
  INFO("plain directory:\n" << render(expected));
  // What the kernel shows right away (the attributes it cached or refetched)...
  CHECK(render(outcome(fx.mnt())) == render(expected));
  // ...and what roamfs stored.
  fx.remount();
  CHECK(render(outcome(fx.mnt())) == render(expected));

  // Spot checks that the cases mean what their names say.
  CHECK(expected.at("write-06777") == "mode 0777 caps no");
  CHECK(expected.at("write-02767-member") == "mode 2767 caps no");
  CHECK(expected.at("write-0666-caps") == "mode 0666 caps no");
  CHECK(expected.at("root-write-06777") == "mode 6777 caps no");
  CHECK(expected.at("write-02766-outsider") == "mode 0766 caps no");
  CHECK(expected.at("chown-06755") == "mode 0755 caps no");
  CHECK(expected.at("chown-0755-caps") == "mode 0755 caps no");

  // The kill is part of the logged operation that did it.
  auto log = read_log(fx.mnt());
  Expect w;  // a setattr (the kernel asks before it sends the data) or the write
  w.path = "/write-06777";
  w.uid = kUser;
  w.details_has = "privileges dropped (mode 0777)";
  expect_logged(log, w);
  Expect c = by_me("setattr", "/chown-06755");
  c.details_has = "privileges dropped (mode 0755)";
  expect_logged(log, c);
}

// A writer outside the file's group: under FUSE_HANDLE_KILLPRIV_V2 the kernel
// does not tell roamfs why it asks, so roamfs reads the caller's groups
// (fuse_req_getgroups). For a --userns mount those are the host's ids while
// the file's gid is the namespace's, so a member through a supplementary
// group only may lose a setgid bit without group execute there.
