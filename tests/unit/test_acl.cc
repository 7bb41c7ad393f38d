// fusefs/engine/acl.h, and the engine keeping mode and ACLs in step.
#include "fusefs/engine/acl.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "tests/unit/engine_env.h"

using namespace roam;
using roam::testing::EngineEnv;
using roam::testing::kTestCaller;
using roam::testing::must;

namespace {

// owner rw-, user 1001 rwx, group r--, mask r-x, other ---
Acl extended_acl() {
  return {{kAclUserObj, 6, 0}, {kAclUser, 7, 1001}, {kAclGroupObj, 4, 0}, {kAclMask, 5, 0}, {kAclOther, 0, 0}};
}

Acl minimal_acl(uint16_t u, uint16_t g, uint16_t o) { return {{kAclUserObj, u, 0}, {kAclGroupObj, g, 0}, {kAclOther, o, 0}}; }

std::optional<Acl> stored_acl(EngineEnv& env, uint64_t ino, std::string_view name) {
  auto v = env.fs->getxattr(ino, name);
  if (!v && v.status().err() == ENODATA) return std::nullopt;
  return must(parse_acl(must(std::move(v))));
}

}  // namespace

TEST_CASE("ACL xattrs round-trip and malformed ones are refused", "[acl]") {
  const Acl acl = extended_acl();
  const std::string bytes = encode_acl(acl);
  CHECK(bytes.size() == 4 + 5 * 8);
  CHECK(must(parse_acl(bytes)) == acl);
  CHECK(parse_acl("").status().err() == EINVAL);
  CHECK(parse_acl(bytes.substr(0, bytes.size() - 1)).status().err() == EINVAL);
  std::string v1 = bytes;
  v1[0] = 1;
  CHECK(parse_acl(v1).status().err() == EINVAL);
  CHECK(parse_acl(encode_acl({{kAclUserObj, 6, 0}, {kAclOther, 4, 0}})).status().err() == EINVAL);
}

TEST_CASE("acl_mode, acl_chmod and acl_create_masq follow the kernel's rules", "[acl]") {
  bool extended = true;
  CHECK(acl_mode(minimal_acl(6, 4, 4), &extended) == 0644);
  CHECK_FALSE(extended);
  CHECK(acl_mode(extended_acl(), &extended) == 0650);  // the mask is the group class
  CHECK(extended);

  Acl acl = extended_acl();
  acl_chmod(acl, 0704);
  CHECK(acl[0].perm == 7);  // owner
  CHECK(acl[1].perm == 7);  // named user: untouched
  CHECK(acl[2].perm == 4);  // group: untouched, the mask moved
  CHECK(acl[3].perm == 0);  // mask
  CHECK(acl[4].perm == 4);  // other

  Acl inherit = extended_acl();
  uint32_t mode = S_IFREG | 0666;
  CHECK(acl_create_masq(inherit, &mode));
  CHECK(mode == (S_IFREG | 0640));  // owner rw, mask r-x & rw- = r--, other none
  CHECK(inherit[3].perm == 4);
  Acl plain = minimal_acl(7, 5, 0);
  mode = S_IFDIR | 02777;
  CHECK_FALSE(acl_create_masq(plain, &mode));
  CHECK(mode == (S_IFDIR | 02750));
}

TEST_CASE("the engine keeps mode and access ACL in step and inherits default ACLs", "[acl]") {
  EngineEnv env;
  Inode f = must(env.fs->mknod(kTestCaller, kRootIno, "f", S_IFREG | 0666, 0, OpKind::kCreate, 022));
  CHECK((f.mode & 07777) == 0644);  // no default ACL: the umask applies

  REQUIRE_OK(env.fs->setxattr(kTestCaller, f.ino, kAclAccessXattr, encode_acl(extended_acl()), 0));
  CHECK((must(env.fs->getattr(f.ino)).mode & 0777) == 0650);
  SetattrArgs chmod;
  chmod.mask = kSetMode;
  chmod.mode = 0704;
  must(env.fs->setattr(kTestCaller, f.ino, chmod));
  CHECK(stored_acl(env, f.ino, kAclAccessXattr)->at(3).perm == 0);

  // An ACL that says no more than a mode becomes that mode, and is not kept.
  REQUIRE_OK(env.fs->setxattr(kTestCaller, f.ino, kAclAccessXattr, encode_acl(minimal_acl(6, 0, 0)), 0));
  CHECK((must(env.fs->getattr(f.ino)).mode & 0777) == 0600);
  CHECK_FALSE(stored_acl(env, f.ino, kAclAccessXattr));

  // setgid goes when the kernel says the caller may not keep it.
  SetattrArgs sgid;
  sgid.mask = kSetMode;
  sgid.mode = 02755;
  must(env.fs->setattr(kTestCaller, f.ino, sgid));
  REQUIRE_OK(env.fs->setxattr(kTestCaller, f.ino, kAclAccessXattr, encode_acl(extended_acl()), 0, true));
  CHECK((must(env.fs->getattr(f.ino)).mode & 07777) == 0650);

  // Default ACLs: directories only; inherited by new inodes instead of the umask.
  CHECK(env.fs->setxattr(kTestCaller, f.ino, kAclDefaultXattr, encode_acl(extended_acl()), 0).err() == EACCES);
  Inode d = must(env.fs->mkdir(kTestCaller, kRootIno, "d", 0777, 022));
  REQUIRE_OK(env.fs->setxattr(kTestCaller, d.ino, kAclDefaultXattr, encode_acl(extended_acl()), 0));
  Inode child = must(env.fs->mknod(kTestCaller, d.ino, "c", S_IFREG | 0666, 0, OpKind::kCreate, 077));
  CHECK((child.mode & 0777) == 0640);
  CHECK(stored_acl(env, child.ino, kAclAccessXattr).has_value());
  CHECK_FALSE(stored_acl(env, child.ino, kAclDefaultXattr));
  Inode sub = must(env.fs->mkdir(kTestCaller, d.ino, "s", 0777, 077));
  CHECK((sub.mode & 0777) == 0650);  // owner rw- and mask r-x of the ACL
  CHECK(stored_acl(env, sub.ino, kAclDefaultXattr) == extended_acl());
  Inode link = must(env.fs->symlink(kTestCaller, d.ino, "l", "c"));
  CHECK((link.mode & 0777) == 0777);
  env.check();
}
