// Undo one program's changes: the planner over records (undo_plan.h) case by
// case, then the engine (undo.h) on a store: reverted files, a file both
// touched, created, deleted and renamed files, one logged restore that
// undo-restore takes back, a dry run, and a user's permissions.
#include <sys/stat.h>

#include <set>

#include <catch2/catch.hpp>

#include "base/timefmt.h"
#include "fusefs/control/execute.h"
#include "fusefs/history/undo.h"
#include "tests/unit/engine_env.h"

using namespace roam;
using namespace roam::testing;

namespace {

const UndoTarget kEvil{std::string("evil"), std::nullopt};

LoggedChange by_evil(uint64_t seq, OpKind kind, std::string path, std::string path2 = "") {
  return {seq, static_cast<int64_t>(seq) * 1000000000, kind, true, std::move(path), std::move(path2)};
}
LoggedChange by_user(uint64_t seq, OpKind kind, std::string path, std::string path2 = "") {
  return {seq, static_cast<int64_t>(seq) * 1000000000, kind, false, std::move(path), std::move(path2)};
}

UndoStep revert(std::string path, uint64_t first) {
  return {UndoStep::Kind::kRevert, std::move(path), first - 1, first, "", ""};
}

}  // namespace

TEST_CASE("undo plan: a file only the program touched goes back to before its first change", "[undo]") {
  const auto steps = plan_undo({by_user(10, OpKind::kWrite, "/a"), by_evil(11, OpKind::kWrite, "/a"),
                                by_evil(12, OpKind::kSetattr, "/a"), by_user(13, OpKind::kWrite, "/b")},
                               kEvil);
  REQUIRE(steps == std::vector<UndoStep>{revert("/a", 11)});
}

TEST_CASE("undo plan: a file both touched is kept and the program's before-version goes beside it", "[undo]") {
  const auto steps = plan_undo({by_evil(11, OpKind::kWrite, "/d/thesis.odt"), by_user(12, OpKind::kWrite, "/d/thesis.odt")},
                               kEvil);
  REQUIRE(steps.size() == 1);
  CHECK(steps[0].kind == UndoStep::Kind::kBeside);
  CHECK(steps[0].at_seq == 10);
  // seq 11 is at 11 s after the epoch in these records.
  CHECK(steps[0].beside == "/d/thesis.odt.before-evil-19700101T000011Z");
  CHECK(beside_path("/x", UndoTarget{std::nullopt, 42u}, 0) == "/x.before-pid-42-19700101T000000Z");
  CHECK(beside_path("/" + std::string(250, 'n'), kEvil, 0).size() == 1 + kNameMax);
}

TEST_CASE("undo plan: created, deleted and renamed files each go back", "[undo]") {
  const auto steps = plan_undo({by_evil(5, OpKind::kCreate, "/a.enc"), by_evil(6, OpKind::kWrite, "/a.enc"),
                                by_evil(7, OpKind::kUnlink, "/a"), by_evil(8, OpKind::kRename, "/b", "/b.enc"),
                                by_user(9, OpKind::kWrite, "/c")},
                               kEvil);
  REQUIRE(steps == std::vector<UndoStep>{revert("/a", 7), revert("/a.enc", 5), revert("/b", 8), revert("/b.enc", 8)});
}

TEST_CASE("undo plan: a process is also found by pid, and others' changes before its first are kept", "[undo]") {
  const UndoTarget pid{std::nullopt, 4242u};
  CHECK(pid.matches(Caller{1000, 1000, 4242, "anything"}));
  CHECK_FALSE(pid.matches(Caller{1000, 1000, 4243, "evil"}));
  CHECK(kEvil.matches(Caller{0, 0, 1, "evil"}));
  CHECK(plan_undo({by_user(3, OpKind::kWrite, "/a")}, kEvil).empty());
}

TEST_CASE("undo plan: directories", "[undo]") {
  SECTION("a tree the program removed comes back whole, from its first change inside") {
    const auto steps = plan_undo({by_evil(20, OpKind::kUnlink, "/d/a"), by_evil(21, OpKind::kUnlink, "/d/b"),
                                  by_evil(22, OpKind::kRmdir, "/d"), by_user(23, OpKind::kWrite, "/db")},
                                 kEvil);
    REQUIRE(steps == std::vector<UndoStep>{revert("/d", 20)});
  }
  SECTION("a directory the program made, that others put files in, is kept; its own files go") {
    const auto steps = plan_undo({by_evil(20, OpKind::kMkdir, "/d"), by_evil(21, OpKind::kCreate, "/d/a"),
                                  by_user(22, OpKind::kCreate, "/d/mine")},
                                 kEvil);
    REQUIRE(steps.size() == 2);
    CHECK(steps[0].kind == UndoStep::Kind::kKept);
    CHECK(steps[0].path == "/d");
    CHECK(steps[1] == revert("/d/a", 21));
  }
  SECTION("a directory moved by others after the program's change: the file is kept, its old self beside") {
    const auto steps = plan_undo({by_evil(20, OpKind::kWrite, "/d/a"), by_user(21, OpKind::kRename, "/d", "/e")},
                                 kEvil);
    REQUIRE(steps.size() == 1);
    CHECK(steps[0].kind == UndoStep::Kind::kBeside);
  }
  SECTION("others' change between the program's change inside and its move of the directory") {
    const auto steps = plan_undo({by_evil(20, OpKind::kWrite, "/d/a"), by_user(21, OpKind::kWrite, "/d/u"),
                                  by_evil(22, OpKind::kRename, "/d", "/e")},
                                 kEvil);
    REQUIRE(steps.size() == 3);
    CHECK(steps[0] == revert("/d", 22));
    CHECK(steps[1].kind == UndoStep::Kind::kKept);
    CHECK(steps[1].path == "/d/a");
    CHECK_THAT(steps[1].reason, Catch::Contains("--before-op 20"));
    CHECK(steps[2] == revert("/e", 22));
  }
  SECTION("a name that only shares a prefix is not inside") {
    const auto steps = plan_undo({by_evil(20, OpKind::kWrite, "/d"), by_user(21, OpKind::kWrite, "/d b"),
                                  by_user(22, OpKind::kWrite, "/d.x")},
                                 kEvil);
    REQUIRE(steps == std::vector<UndoStep>{revert("/d", 20)});
  }
}

namespace {

const Caller kAliceCaller{1000, 1000, 77, "sh"};
const Caller kEvilCaller{1000, 1000, 666, "evil"};
const Identity kAlice{1000, 1000, {}, 78, "roam"};
const Identity kBob{1001, 1001, {}, 79, "roam"};

uint64_t make_file(EngineEnv& e, const Caller& c, const std::string& name, const std::string& data) {
  const Inode f = must(e.fs->mknod(c, kRootIno, name, S_IFREG | 0644, 0, OpKind::kCreate));
  must(e.fs->write(c, f.ino, 0, data));
  return f.ino;
}

// The content of /name now; "(none)" when there is no such file.
std::string content(EngineEnv& e, const std::string& name) {
  Fs fs(*e.store);
  auto f = fs.lookup(kRootIno, name);
  if (!f) return "(none)";
  std::string buf(f->size, '\0');
  buf.resize(must(fs.read(f->ino, 0, buf.size(), buf.data())));
  return buf;
}

// Alice's files a0..a4 and her own b; evil "encrypts" the a's (in place, and
// by writing a copy and removing the original), touches b before she edits it.
void ransom(EngineEnv& e) {
  chown_root_to_alice(e);
  for (int i = 0; i < 5; ++i) make_file(e, kAliceCaller, "a" + std::to_string(i), "plain " + std::to_string(i));
  const uint64_t b = make_file(e, kAliceCaller, "b", "b v1");
  for (int i = 0; i < 3; ++i) {
    const Inode a = must(e.fs->lookup(kRootIno, "a" + std::to_string(i)));
    must(e.fs->write(kEvilCaller, a.ino, 0, "CIPHER"));  // over the first 6 of 7 bytes
  }
  for (int i = 3; i < 5; ++i) {
    const std::string name = "a" + std::to_string(i);
    make_file(e, kEvilCaller, name + ".enc", "CIPHERTEXT");
    REQUIRE_OK(e.fs->unlink(kEvilCaller, kRootIno, name));
  }
  must(e.fs->write(kEvilCaller, b, 0, "XXXX"));
  must(e.fs->write(kAliceCaller, b, 0, "b v2"));  // she edits it after: hers is kept
  make_file(e, kAliceCaller, "c", "hers");
}

}  // namespace

TEST_CASE("undo brings back every file the program changed and keeps every other change, in one record", "[undo]") {
  EngineEnv e;
  ransom(e);
  const uint64_t before = e.last_seq();
  const UndoResult done = must(undo_process(*e.store, kAliceCaller, UndoRequest{kEvil, std::nullopt, false}));
  for (int i = 0; i < 5; ++i) CHECK(content(e, "a" + std::to_string(i)) == "plain " + std::to_string(i));
  CHECK(content(e, "a3.enc") == "(none)");
  CHECK(content(e, "a4.enc") == "(none)");
  CHECK(content(e, "b") == "b v2");
  CHECK(content(e, "c") == "hers");
  const UndoStep& b = done.steps.back();  // in path order: /a0 ... /a4.enc, /b
  CHECK(b.path == "/b");
  REQUIRE(b.kind == UndoStep::Kind::kBeside);
  CHECK(content(e, b.beside.substr(1)) == "b v1");
  REQUIRE(done.restore.record.has_value());
  CHECK(done.restore.record->seq == before + 1);
  CHECK(e.last_seq() == before + 1);
  CHECK(done.restore.record->path == "/");
  e.check();

  SECTION("undo-restore takes the whole undo back") {
    const control::Context ctx{kAliceCaller, {}};
    REQUIRE(control::execute(*e.store, ctx, control::UndoRestoreCall{Identity{1000, 1000, {}, 77, "sh"}}).reply.err == 0);
    CHECK(content(e, "a0") == "CIPHER0");
    CHECK(content(e, "a3") == "(none)");
    CHECK(content(e, "a3.enc") == "CIPHERTEXT");
    CHECK(content(e, b.beside.substr(1)) == "(none)");
    CHECK(content(e, "b") == "b v2");
    e.check();
  }
}

TEST_CASE("an undo's dry run lists every path and changes nothing; --since narrows it", "[undo]") {
  EngineEnv e;
  ransom(e);
  const uint64_t before = e.last_seq();
  UndoRequest req{kEvil, std::nullopt, true};
  const UndoResult dry = must(undo_process(*e.store, kAliceCaller, req));
  CHECK(e.last_seq() == before);
  CHECK(content(e, "a0") == "CIPHER0");
  std::set<std::string> paths;
  for (const auto& c : dry.restore.changes) paths.insert(c.path);
  for (const char* p : {"/a0", "/a1", "/a2", "/a3", "/a4", "/a3.enc", "/a4.enc", "/b"}) CHECK(paths.count(p) == 1);
  req.since_ns = wall_clock_ns() + 1000000000;
  CHECK(undo_process(*e.store, kAliceCaller, req).status().err() == ENOENT);
}

TEST_CASE("a user's undo is checked like their restores", "[undo][control]") {
  EngineEnv e;
  ransom(e);
  const control::Context ctx{kAliceCaller, {}};
  control::UndoCall call;
  call.comm = "evil";
  call.as = kBob;  // may not write alice's root
  CHECK(control::execute(*e.store, ctx, call).reply.err == EACCES);
  CHECK(content(e, "a0") == "CIPHER0");
  call.as = kAlice;
  const control::Reply ok = control::execute(*e.store, ctx, call).reply;
  REQUIRE(ok.err == 0);
  CHECK(ok.message == "/");
  CHECK(content(e, "a0") == "plain 0");
  ReadTxn txn = must(e.store->begin_read());
  CHECK(must(oplog::get(txn, ok.seq))->caller.uid == 1000);
}
