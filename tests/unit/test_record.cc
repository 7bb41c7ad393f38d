// fusefs/oplog/record.h: a record's encoding inside a chunk, inode before-images, op kind names.
#include "fusefs/oplog/record.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <random>

#include "fusefs/store/codec.h"
#include "tests/unit/helpers.h"
#include "tests/unit/record_samples.h"

using namespace roam;
using namespace roam::testing;

namespace {

// Encodes `r` as the record after `prev` in a chunk (nullptr: first) and
// decodes it back from a buffer of exactly its size.
Result<OpRecord> round_trip(const OpRecord& r, const RecordContext* prev) {
  std::string v;
  encode_record(v, r, prev);
  ExactBuffer buf(v);
  return decode_record(r.seq, buf.view(), prev);
}

size_t encoded_size(const OpRecord& r, const RecordContext* prev = nullptr) {
  std::string v;
  encode_record(v, r, prev);
  return v.size();
}

}  // namespace

TEST_CASE("a record round trips every field, first in its chunk or after another", "[oplog]") {
  const OpRecord r = full_record();
  SECTION("first") {
    auto d = round_trip(r, nullptr);
    INFO(describe(d.status()));
    REQUIRE(d.is_ok());
    check_same(r, *d);
  }
  SECTION("after a record of the same caller: the caller is not repeated") {
    const RecordContext prev{r.ts_ns - 1500, r.caller};
    auto d = round_trip(r, &prev);
    REQUIRE(d.is_ok());
    check_same(r, *d);
    CHECK(encoded_size(r, &prev) + r.caller.comm.size() + 6 < encoded_size(r));
  }
  SECTION("after a record of another caller, later in time than it (a clock that went back)") {
    const RecordContext prev{r.ts_ns + 5'000'000'000, {0, 0, 1, "init"}};
    auto d = round_trip(r, &prev);
    REQUIRE(d.is_ok());
    check_same(r, *d);
  }
}

TEST_CASE("a remote desktop's process is named with its desktop, and borrowed only by the same", "[oplog]") {
  OpRecord r = full_record();
  r.caller.desktop = "R1";
  auto first = round_trip(r, nullptr);
  REQUIRE_OK(first);
  check_same(r, *first);
  CHECK(caller_text(first->caller) == "bash[4242]@R1 uid 1000");
  // The same process after it: borrowed, desktop and all.
  const RecordContext same{r.ts_ns - 1, r.caller};
  auto borrowed = round_trip(r, &same);
  REQUIRE_OK(borrowed);
  check_same(r, *borrowed);
  CHECK(encoded_size(r, &same) + r.caller.comm.size() + r.caller.desktop.size() + 6 < encoded_size(r));
  // The same uid, pid and name on the storage node (or another desktop) is another caller.
  RecordContext local{r.ts_ns - 1, r.caller};
  local.caller.desktop.clear();
  auto after_local = round_trip(r, &local);
  REQUIRE_OK(after_local);
  check_same(r, *after_local);
  r.caller.desktop.clear();
  const RecordContext remote{r.ts_ns - 1, {1000, 1001, 4242, "bash", "R1"}};
  auto local_after_remote = round_trip(r, &remote);
  REQUIRE_OK(local_after_remote);
  CHECK(local_after_remote->caller.desktop.empty());
  CHECK(caller_text(local_after_remote->caller) == "bash[4242] uid 1000");
}

TEST_CASE("random records round trip, in chunks of random length", "[oplog]") {
  std::mt19937_64 rng(32);
  for (int n = 0; n < 500; ++n) {
    OpRecord r = random_record(rng);
    // times anywhere in the int64 range, the extremes too
    const int64_t secs[] = {INT64_MIN, INT64_MAX, -1, 0, static_cast<int64_t>(rng())};
    r.atime = {secs[rng() % 5], static_cast<uint32_t>(rng() % 1000000000)};
    for (InodeBefore& b : r.inodes_before)
      if (b.image) b.image->ctime = {secs[rng() % 5], static_cast<uint32_t>(rng() % 1000000000)};
    if (rng() % 3 == 0) r.caller.desktop = random_bytes(rng, 1 + rng() % 20);  // a remote desktop's process
    RecordContext prev{static_cast<int64_t>(rng()), r.caller};
    if (rng() % 2) prev.caller.pid ^= 1;
    if (rng() % 4 == 0) prev.caller.desktop = "another desktop";
    auto d = round_trip(r, rng() % 2 ? &prev : nullptr);
    INFO("record " << n);
    REQUIRE(d.is_ok());
    check_same(r, *d);
  }
}

TEST_CASE("an inode before-image keeps what the operation changed", "[oplog]") {
  Inode before = inode_with(17, "old");
  Inode after = before;
  after.size = 99;
  after.mtime = {1900000000, 5};
  after.ctime = {1900000000, 5};
  after.name = "new";
  InodeBefore b{17, before, kAllInodeFields};
  b.narrow_to(after);
  CHECK(b.fields == (kFieldSize | kFieldMtime | kFieldCtime | kFieldName));
  CHECK(must(b.before(after)) == before);

  OpRecord r;
  r.seq = 3;
  r.kind = OpKind::kWrite;
  r.ts_ns = 1900000000000000005;
  r.ino = 17;
  r.inodes_before.push_back(b);
  auto d = round_trip(r, nullptr);
  REQUIRE(d.is_ok());
  REQUIRE(d->inodes_before.size() == 1);
  const InodeBefore& got = d->inodes_before[0];
  CHECK(got.ino == 17);
  CHECK(got.fields == b.fields);
  CHECK(must(got.before(after)) == before);  // completed from the state after it
  // It costs a fraction of the whole image.
  OpRecord whole = r;
  whole.inodes_before[0].fields = kAllInodeFields;
  CHECK(encoded_size(r) + 20 < encoded_size(whole));

  SECTION("an operation that deleted the inode keeps all of it") {
    InodeBefore gone{17, before, kAllInodeFields};
    gone.narrow_to(std::nullopt);
    CHECK(gone.fields == kAllInodeFields);
    CHECK(must(gone.before(std::nullopt)) == before);
  }
  SECTION("an operation that created it keeps nothing") {
    InodeBefore created{17, std::nullopt, kAllInodeFields};
    created.narrow_to(after);
    CHECK_FALSE(must(created.before(after)).has_value());
  }
  SECTION("a partial image with no state after it is corrupt, not a guess") {
    CHECK(got.before(std::nullopt).status().err() == EIO);
  }
}

TEST_CASE("an entry name that is the path's last component is not repeated", "[oplog]") {
  OpRecord r;
  r.seq = 1;
  r.kind = OpKind::kRename;
  r.path = "/dir/a-rather-long-old-name";
  r.path2 = "/other/a-rather-long-new-name";
  r.dirents_before.push_back({2, "a-rather-long-old-name", Dirent{9, S_IFREG}});
  r.dirents_before.push_back({3, "a-rather-long-new-name", std::nullopt});
  r.dirents_before.push_back({3, "a-third-name", Dirent{10, S_IFDIR}});
  auto d = round_trip(r, nullptr);
  REQUIRE(d.is_ok());
  check_same(r, *d);
  OpRecord bare = r;
  bare.dirents_before.clear();
  CHECK(encoded_size(r) < encoded_size(bare) + 3 * 6 + std::string("a-third-name").size());
}

TEST_CASE("undo entries from a newer writer are skipped", "[oplog]") {
  OpRecord r = full_record();
  std::string v;
  encode_record(v, r, nullptr);
  v.push_back(static_cast<char>(200));
  codec::put_bytes(v, "whatever a later version keeps");
  auto d = decode_record(r.seq, v, nullptr);
  REQUIRE(d.is_ok());
  check_same(r, *d);
}

TEST_CASE("malformed records are corrupt, never a crash", "[oplog]") {
  const OpRecord r = full_record();
  std::string good;
  encode_record(good, r, nullptr);
  auto expect_corrupt = [](std::string_view v, const RecordContext* prev) {
    ExactBuffer buf(v);
    auto d = decode_record(7, buf.view(), prev);
    REQUIRE_FALSE(d.is_ok());
    CHECK(d.status().err() == EIO);
    CHECK(d.status().message().find("op log record 7") != std::string::npos);
  };
  SECTION("every truncation") {
    for (size_t n = 0; n < good.size(); ++n) {
      ExactBuffer buf(good.substr(0, n));
      auto d = decode_record(7, buf.view(), nullptr);
      // A cut between undo entries leaves a shorter valid record; any other is corrupt.
      if (d.is_ok()) CHECK(d->inodes_before.size() + d->dirents_before.size() < 10);
      else CHECK(d.status().err() == EIO);
    }
  }
  SECTION("kind zero and kinds past the last") {
    std::string v = good;
    v[0] = 0;
    expect_corrupt(v, nullptr);
    v[0] = static_cast<char>(static_cast<int>(kLastOpKind) + 1);
    expect_corrupt(v, nullptr);
  }
  SECTION("borrowing the caller of a record that is not there") {
    OpRecord same = r;
    const RecordContext prev{r.ts_ns - 1, r.caller};
    std::string v;
    encode_record(v, same, &prev);
    expect_corrupt(v, nullptr);
  }
  SECTION("head bits no format has, and a borrowed caller that names a desktop") {
    OpRecord bare;
    bare.ino = 5;
    bare.caller = {1, 2, 3, "x", "R1"};
    std::string v;
    encode_record(v, bare, nullptr);
    codec::Reader in(std::string_view(v).substr(1));
    const uint64_t head = in.varint();
    REQUIRE(head & (uint64_t{1} << 16));  // the desktop bit
    std::string head_bytes;
    codec::put_varint(head_bytes, head);
    const std::string after_head = v.substr(1 + head_bytes.size());
    auto with_head = [&](uint64_t h) {
      std::string out(1, v[0]);
      codec::put_varint(out, h);
      return out + after_head;
    };
    REQUIRE_OK(decode_record(7, with_head(head), nullptr));
    expect_corrupt(with_head(head | (uint64_t{1} << 17)), nullptr);
    const RecordContext prev{bare.ts_ns, bare.caller};
    expect_corrupt(with_head(head | 1), &prev);
  }
  SECTION("an undo entry longer than its fields") {
    std::string v;
    OpRecord bare;
    bare.ino = 5;
    encode_record(v, bare, nullptr);
    v.push_back(1);  // an inode image...
    codec::put_bytes(v, std::string("\0\0\0extra", 8));  // ...of no fields, then bytes
    expect_corrupt(v, nullptr);
  }
  SECTION("random garbage and flipped bytes") {
    std::mt19937_64 rng(33);
    const RecordContext prev{5, {1, 2, 3, "x"}};
    for (int n = 0; n < 30000; ++n) {
      std::string v = n % 2 ? random_bytes(rng, rng() % 64) : good;
      if (n % 2 == 0)
        for (int k = 0; k < 3; ++k) v[rng() % v.size()] = static_cast<char>(rng());
      ExactBuffer buf(v);
      auto d = decode_record(n, buf.view(), n % 3 ? &prev : nullptr);
      if (!d.is_ok()) CHECK(d.status().err() == EIO);
    }
  }
}

TEST_CASE("op kind names", "[oplog]") {
  const std::vector<std::pair<OpKind, std::string>> all = {
      {OpKind::kCreate, "create"},   {OpKind::kMknod, "mknod"},         {OpKind::kMkdir, "mkdir"},
      {OpKind::kSymlink, "symlink"}, {OpKind::kLink, "link"},           {OpKind::kUnlink, "unlink"},
      {OpKind::kRmdir, "rmdir"},     {OpKind::kRename, "rename"},       {OpKind::kWrite, "write"},
      {OpKind::kSetattr, "setattr"}, {OpKind::kFallocate, "fallocate"}, {OpKind::kSetxattr, "setxattr"},
      {OpKind::kRemovexattr, "removexattr"}, {OpKind::kRestore, "restore"}, {OpKind::kTmpfile, "tmpfile"},
      {OpKind::kCopy, "copy"}};
  REQUIRE(all.size() == static_cast<size_t>(kLastOpKind));
  for (const auto& [kind, name] : all) {
    CHECK(op_kind_name(kind) == name);
    auto back = op_kind_from_name(name);
    REQUIRE(back.has_value());
    CHECK(*back == kind);
  }
  CHECK(op_kind_name(static_cast<OpKind>(0)) == "?");
  CHECK(op_kind_name(static_cast<OpKind>(static_cast<int>(kLastOpKind) + 1)) == "?");
  CHECK(op_kind_name(static_cast<OpKind>(255)) == "?");
  for (const char* bad : {"", "?", "Create", "CREATE", "creat", "create ", "writes", "delete"})
    CHECK_FALSE(op_kind_from_name(bad).has_value());
}

// The encoding is on disk: these bytes were written by the codec as it was
// when records moved into chunks, and every later codec must write and read
// them the same, byte for byte.
TEST_CASE("record encodings are fixed bytes", "[oplog]") {
  SECTION("first in its chunk: every argument, whole inode images, every kind of undo entry") {
    const OpRecord r = full_record();
    const std::string fixed = from_hex(
        "08feff03aad4818997d9efeb31e807e9079221046261736811120b2f686f6d65"
        "2f752f6120620a2f686f6d652f752fff00ed8b01ffffffff0f80808080148080"
        "08ffffffffffffffffff01feff03fdff03d8d8b6d991b3c2a805c8e89afae0b3"
        "dfd76381100c757365722e636f6d6d656e74013200df3fa08302e8076402b960"
        "d0a8e3cca0b3c2a805d8a88392aeb2dfd763fae6bce4f688831e010361206206"
        "746172676574010163012e01df37a08302e8076402b960d0a8e3cca0b3c2a805"
        "d8a88392aeb2dfd763fae6bce4f688831e010674617267657402040100110402"
        "03010363030c0006757365722e7801760076030d000a757365722e656d707479"
        "01030d000b757365722e616273656e7404170080808080148180080005070080"
        "800880800803086401040412008020");
    std::string v;
    encode_record(v, r, nullptr);
    CHECK(to_hex(v) == to_hex(fixed));
    auto d = decode_record(r.seq, fixed, nullptr);
    REQUIRE_OK(d);
    check_same(r, *d);
  }
  SECTION("after a record of the same caller: partial images, the record's own range, far times") {
    const OpRecord r = narrow_record();
    const RecordContext prev = narrow_record_prev();
    const std::string fixed = from_hex(
        "099b67a9e137110b2f686f6d652f752f6120620b2f686f6d652f752f6e657780"
        "208040806001feffffffffffffffff010784a6cdea01010e009001b96084e693"
        "91aeb2dfd763010c058210e80706746172676574020401011108030a09067573"
        "65722e79017a050700050b80048040");
    std::string v;
    encode_record(v, r, &prev);
    CHECK(to_hex(v) == to_hex(fixed));
    auto d = decode_record(r.seq, fixed, &prev);
    REQUIRE_OK(d);
    check_same(r, *d);
    REQUIRE(d->inodes_before.size() == r.inodes_before.size());
    for (size_t i = 0; i < r.inodes_before.size(); ++i) CHECK(d->inodes_before[i] == r.inodes_before[i]);
  }
}
