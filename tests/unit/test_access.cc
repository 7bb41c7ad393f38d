// fusefs/history/access.h and the user requests of fusefs/control
// (user_requests.h): what a desktop user may read of the past and write now,
// checked as the kernel would (owner, groups, ACLs, root), on a real store
// with past views.
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "fusefs/control/execute.h"
#include "fusefs/history/access.h"
#include "fusefs/history/moment.h"
#include "tests/unit/engine_env.h"

using namespace roam;
using roam::testing::EngineEnv;
using roam::testing::must;

namespace {

const Identity kAlice{1000, 1000, {}, 77, "sh"};
const Identity kBob{1001, 1001, {50}, 78, "sh"};
const Identity kRoot{0, 0, {}, 1, "sh"};
const Caller kAliceCaller{1000, 1000, 77, "sh"};
const Caller kRootCaller{0, 0, 1, "sh"};

Inode inode(uint32_t uid, uint32_t gid, uint32_t mode) {
  Inode i;
  i.uid = uid;
  i.gid = gid;
  i.mode = S_IFREG | mode;
  return i;
}

void chmod_as(EngineEnv& e, const Caller& c, uint64_t ino, uint32_t mode) {
  SetattrArgs a;
  a.mask = kSetMode;
  a.mode = mode;
  must(e.fs->setattr(c, ino, a));
}

}  // namespace

TEST_CASE("owner, group, supplementary groups and others get their own bits; root gets all", "[access]") {
  const Inode f = inode(1000, 50, 0640);
  CHECK(permits(kAlice, f, std::nullopt, kMayRead | kMayWrite));
  CHECK(permits(kBob, f, std::nullopt, kMayRead));  // through supplementary group 50
  CHECK_FALSE(permits(kBob, f, std::nullopt, kMayWrite));
  CHECK_FALSE(permits(Identity{1002, 1002, {}, 1, ""}, f, std::nullopt, kMayRead));
  CHECK(permits(kRoot, inode(5, 5, 0), std::nullopt, kMayRead | kMayWrite));
  // The owner's bits count for the owner even when the others' would give more.
  CHECK_FALSE(permits(kAlice, inode(1000, 1000, 0077), std::nullopt, kMayRead));
}

TEST_CASE("an ACL's named user and group entries count, masked by its mask", "[access]") {
  const Inode f = inode(1000, 1000, 0600);
  Acl acl{{kAclUserObj, 6, 0}, {kAclUser, 4, 1001}, {kAclGroupObj, 0, 0}, {kAclMask, 4, 0}, {kAclOther, 0, 0}};
  CHECK(permits(kBob, f, acl, kMayRead));
  CHECK_FALSE(permits(kBob, f, acl, kMayWrite));
  acl[1].perm = 6;  // rw for bob, but the mask says r
  CHECK_FALSE(permits(kBob, f, acl, kMayWrite));
  Acl by_group{{kAclUserObj, 6, 0}, {kAclGroupObj, 0, 0}, {kAclGroup, 4, 50}, {kAclMask, 4, 0}, {kAclOther, 0, 0}};
  CHECK(permits(kBob, f, by_group, kMayRead));
  CHECK_FALSE(permits(Identity{1002, 1002, {}, 1, ""}, f, by_group, kMayRead));
}

TEST_CASE("reading the past is checked as it was then; writing as it is now", "[access]") {
  EngineEnv e;
  chown_root_to_alice(e);
  const Inode secret = must(e.fs->mknod(kAliceCaller, kRootIno, "secret", S_IFREG | 0600, 0, OpKind::kCreate));
  must(e.fs->write(kAliceCaller, secret.ino, 0, "then"));
  const uint64_t then = e.last_seq();
  chmod_as(e, kAliceCaller, secret.ino, 0644);  // readable by all now, not then
  ReadTxn txn = must(e.store->begin_read());
  PastView past(txn, then), now(txn, PastView::kNow);
  CHECK(check_readable(past, kAlice, "/secret").is_ok());
  CHECK(check_readable(past, kBob, "/secret").err() == EACCES);
  CHECK(check_readable(now, kBob, "/secret").is_ok());
  // Bob may not write alice's 0755 root, alice may; root may anything.
  CHECK(check_writable(now, kBob, "/new").err() == EACCES);
  CHECK(check_writable(now, kAlice, "/new").is_ok());
  CHECK(check_writable(now, kRoot, "/secret").is_ok());
}

TEST_CASE("a directory is readable only when everything below it was", "[access]") {
  EngineEnv e;
  chown_root_to_alice(e);
  const Inode dir = must(e.fs->mkdir(kAliceCaller, kRootIno, "d", 0755));
  must(e.fs->mknod(kAliceCaller, dir.ino, "mine", S_IFREG | 0644, 0, OpKind::kCreate));
  const Inode sub = must(e.fs->mkdir(kAliceCaller, dir.ino, "sub", 0755));
  must(e.fs->mknod(kRootCaller, sub.ino, "roots", S_IFREG | 0600, 0, OpKind::kCreate));
  ReadTxn txn = must(e.store->begin_read());
  PastView now(txn, PastView::kNow);
  const Status s = check_readable(now, kAlice, "/d");
  CHECK(s.err() == EACCES);
  CHECK_THAT(s.message(), Catch::Contains("/d/sub/roots"));
  CHECK(check_readable(now, kAlice, "/d/mine").is_ok());
  // A path that was not there needs read on its parent, and search on the way.
  CHECK(check_readable(now, kAlice, "/d/absent").is_ok());
  chmod_as(e, kAliceCaller, dir.ino, 0700);
  PastView later(txn, PastView::kNow);
  CHECK(check_readable(later, kBob, "/d/mine").err() == EACCES);
}

TEST_CASE("a user's restore is refused where they could not read then or write now; allowed otherwise",
          "[access][control]") {
  EngineEnv e;
  chown_root_to_alice(e);
  const Inode mine = must(e.fs->mknod(kAliceCaller, kRootIno, "mine", S_IFREG | 0644, 0, OpKind::kCreate));
  must(e.fs->write(kAliceCaller, mine.ino, 0, "v1"));
  must(e.fs->mknod(kRootCaller, kRootIno, "roots", S_IFREG | 0600, 0, OpKind::kCreate));
  const uint64_t then = e.last_seq();
  must(e.fs->write(kAliceCaller, mine.ino, 0, "v2"));
  REQUIRE_OK(e.fs->unlink(kRootCaller, kRootIno, "roots"));
  const control::Context ctx{kAliceCaller, {}};
  auto run = [&](const Identity& who, const std::string& path) {
    control::RestoreCall c;
    c.path = path;
    c.before_op = then + 1;
    c.as = who;
    return control::execute(*e.store, ctx, c).reply;
  };
  CHECK(run(kAlice, "/roots").err == EACCES);
  CHECK(run(kBob, "/mine").err == EACCES);  // readable then, but bob may not write alice's root
  const control::Reply ok = run(kAlice, "/mine");
  REQUIRE(ok.err == 0);
  CHECK(ok.seq != 0);
  // Logged as alice's, so that undo-restore finds it as hers.
  ReadTxn txn = must(e.store->begin_read());
  const OpRecord rec = *must(oplog::get(txn, ok.seq));
  CHECK(rec.caller.uid == 1000);
  CHECK(rec.caller.pid == 77);
}

TEST_CASE("undo-restore undoes the user's newest restore, and is refused to one who made none", "[access][control]") {
  EngineEnv e;
  chown_root_to_alice(e);
  const Inode f = must(e.fs->mknod(kAliceCaller, kRootIno, "f", S_IFREG | 0644, 0, OpKind::kCreate));
  must(e.fs->write(kAliceCaller, f.ino, 0, "v1"));
  const uint64_t then = e.last_seq();
  must(e.fs->write(kAliceCaller, f.ino, 0, "v2"));
  const control::Context ctx{kAliceCaller, {}};
  control::RestoreCall c;
  c.path = "/f";
  c.before_op = then + 1;
  c.as = kAlice;
  REQUIRE(control::execute(*e.store, ctx, c).reply.err == 0);
  auto read_f = [&] {
    Fs fs(*e.store);
    const Inode now = must(fs.lookup(kRootIno, "f"));
    char buf[16];
    const size_t n = must(fs.read(now.ino, 0, sizeof buf, buf));
    return std::string(buf, n);
  };
  CHECK(read_f() == "v1");
  CHECK(control::execute(*e.store, ctx, control::UndoRestoreCall{kBob}).reply.err == ENOENT);
  REQUIRE(control::execute(*e.store, ctx, control::UndoRestoreCall{kAlice}).reply.err == 0);
  CHECK(read_f() == "v2");
}

TEST_CASE("a user's history and log show only what they could read", "[access][control]") {
  EngineEnv e;
  chown_root_to_alice(e);
  const Inode pub = must(e.fs->mknod(kAliceCaller, kRootIno, "pub", S_IFREG | 0644, 0, OpKind::kCreate));
  must(e.fs->write(kAliceCaller, pub.ino, 0, "x"));
  const Inode dir = must(e.fs->mkdir(kAliceCaller, kRootIno, "private", 0700));
  must(e.fs->mknod(kAliceCaller, dir.ino, "f", S_IFREG | 0644, 0, OpKind::kCreate));
  const control::Context ctx{kAliceCaller, {}};
  auto history = [&](const std::string& path, std::optional<Identity> who) {
    return control::execute(*e.store, ctx, control::HistoryCall{path, who}).reply;
  };
  CHECK(history("/pub", kBob).rows.size() == 2);  // create, write
  CHECK(history("/private/f", kBob).err == EACCES);
  CHECK(history("/private/f", kAlice).rows.size() == 1);
  CHECK(history("/private/f", std::nullopt).rows.size() == 1);  // an operator's
  control::LogCall log;
  log.as = kBob;
  const auto bobs = control::execute(*e.store, ctx, log).reply;
  REQUIRE(bobs.err == 0);
  for (const auto& row : bobs.rows) CHECK(row[3].find("/private/") == std::string::npos);
  log.as = kAlice;
  const auto alices = control::execute(*e.store, ctx, log).reply;
  CHECK(alices.rows.size() == bobs.rows.size() + 1);  // the create of /private/f
  log.limit = 2;
  CHECK(control::execute(*e.store, ctx, log).reply.rows.size() == 2);
}
