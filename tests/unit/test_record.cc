// fusefs/oplog/record.h: OpRecord encoding and op kind names.
#include "fusefs/oplog/record.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <random>
#include <set>

#include "fusefs/store/codec.h"
#include "tests/unit/helpers.h"

using namespace roam;
using roam::testing::ExactBuffer;
using roam::testing::random_bytes;

namespace {

Inode inode_with(uint64_t ino, const std::string& name) {
  Inode i;
  i.ino = ino;
  i.mode = S_IFREG | 0640;
  i.uid = 1000;
  i.gid = 100;
  i.nlink = 2;
  i.size = 12345;
  i.rdev = 0;
  i.atime = {1700000000, 1};
  i.mtime = {-1, 999999999};
  i.ctime = {1800000000, 500};
  i.parent = 1;
  i.name = name;
  i.symlink_target = "target";
  return i;
}

// Every field set, every undo list holding both present and absent entries.
OpRecord full_record() {
  OpRecord r;
  r.seq = 42;
  r.ts_ns = 1795774500123456789;
  r.kind = OpKind::kRename;
  r.caller = {1000, 1001, 4242, "bash"};
  r.ino = 17;
  r.ino2 = 18;
  r.path = "/home/u/a b";
  r.path2 = std::string("/home/u/\xff\0c", 10);
  r.mode = S_IFDIR | 02755;
  r.flags = 0xffffffff;
  r.offset = 5ull << 30;
  r.length = 131072;
  r.size = UINT64_MAX;
  r.uid = 65534;
  r.gid = 65533;
  r.atime = {1700000000, 999999999};
  r.mtime = {-12, 3};
  r.rdev = 0x0801;
  r.name = "user.comment";
  r.inodes_before.emplace_back(17, inode_with(17, "a b"));
  r.inodes_before.emplace_back(99, std::nullopt);  // created by the op
  r.inodes_before.emplace_back(1, inode_with(1, ""));
  r.dirents_before.push_back({1, "a b", Dirent{17, S_IFDIR}});
  r.dirents_before.push_back({1, "c", std::nullopt});
  r.xattrs_before.push_back({17, "user.x", std::string("v\0v", 3)});
  r.xattrs_before.push_back({17, "user.empty", std::string()});  // present but empty
  r.xattrs_before.push_back({17, "user.absent", std::nullopt});
  r.data_before.push_back({17, 5ull << 30, 131073, {{5ull << 30, 7, 0, 131072}, {(5ull << 30) + 131072, 8, 100, 1}}});
  r.data_before.push_back({18, 0, 4096, {}});  // a hole
  return r;
}

void check_same(const OpRecord& a, const OpRecord& b) {
  CHECK(a.seq == b.seq);
  CHECK(a.ts_ns == b.ts_ns);
  CHECK(a.kind == b.kind);
  CHECK(a.caller.uid == b.caller.uid);
  CHECK(a.caller.gid == b.caller.gid);
  CHECK(a.caller.pid == b.caller.pid);
  CHECK(a.caller.comm == b.caller.comm);
  CHECK(a.ino == b.ino);
  CHECK(a.ino2 == b.ino2);
  CHECK(a.path == b.path);
  CHECK(a.path2 == b.path2);
  CHECK(a.mode == b.mode);
  CHECK(a.flags == b.flags);
  CHECK(a.offset == b.offset);
  CHECK(a.length == b.length);
  CHECK(a.size == b.size);
  CHECK(a.uid == b.uid);
  CHECK(a.gid == b.gid);
  CHECK(a.atime == b.atime);
  CHECK(a.mtime == b.mtime);
  CHECK(a.rdev == b.rdev);
  CHECK(a.name == b.name);
  REQUIRE(a.inodes_before.size() == b.inodes_before.size());
  for (size_t i = 0; i < a.inodes_before.size(); ++i) {
    CHECK(a.inodes_before[i].first == b.inodes_before[i].first);
    CHECK(a.inodes_before[i].second == b.inodes_before[i].second);
  }
  REQUIRE(a.dirents_before.size() == b.dirents_before.size());
  for (size_t i = 0; i < a.dirents_before.size(); ++i) {
    const auto &x = a.dirents_before[i], &y = b.dirents_before[i];
    CHECK(x.parent == y.parent);
    CHECK(x.name == y.name);
    REQUIRE(x.entry.has_value() == y.entry.has_value());
    if (x.entry) {
      CHECK(x.entry->ino == y.entry->ino);
      CHECK(x.entry->type == y.entry->type);
    }
  }
  REQUIRE(a.xattrs_before.size() == b.xattrs_before.size());
  for (size_t i = 0; i < a.xattrs_before.size(); ++i) {
    CHECK(a.xattrs_before[i].ino == b.xattrs_before[i].ino);
    CHECK(a.xattrs_before[i].name == b.xattrs_before[i].name);
    CHECK(a.xattrs_before[i].value == b.xattrs_before[i].value);
  }
  CHECK(a.data_before == b.data_before);
}

// Offsets in an encoded record where a field (tag) starts, plus the end.
// A prefix that ends exactly there is a valid, shorter record.
std::set<size_t> field_boundaries(const std::string& v) {
  codec::Reader r(v);
  r.byte();
  r.byte();
  r.svarint();
  r.varint();
  r.varint();
  r.varint();
  r.bytes();
  REQUIRE(r.ok());
  std::set<size_t> out;
  size_t pos = v.size() - r.rest().size();
  codec::Reader f(std::string_view(v).substr(pos));
  out.insert(pos);
  while (!f.at_end()) {
    f.byte();
    f.bytes();
    REQUIRE(f.ok());
    // position = total minus what is left
    codec::Reader probe = f;
    out.insert(v.size() - probe.rest().size());
  }
  return out;
}

}  // namespace

TEST_CASE("OpRecord round trips every field and every undo list", "[oplog]") {
  OpRecord r = full_record();
  ExactBuffer buf(encode(r));
  auto d = decode_op(r.seq, buf.view());
  INFO(roam::testing::describe(d.status()));
  REQUIRE(d.is_ok());
  check_same(r, *d);
}

TEST_CASE("OpRecord of every kind round trips; seq comes from the key", "[oplog]") {
  for (int k = 1; k <= static_cast<int>(kLastOpKind); ++k) {
    OpRecord r;
    r.kind = static_cast<OpKind>(k);
    r.ts_ns = -5;  // signed
    r.caller.comm = "";
    auto d = decode_op(1000 + k, encode(r));
    REQUIRE(d.is_ok());
    r.seq = 1000 + k;
    check_same(r, *d);
  }
}

TEST_CASE("random records round trip", "[oplog]") {
  std::mt19937_64 rng(30);
  for (int n = 0; n < 500; ++n) {
    OpRecord r;
    r.seq = rng();
    r.ts_ns = static_cast<int64_t>(rng());
    r.kind = static_cast<OpKind>(1 + rng() % static_cast<int>(kLastOpKind));
    r.caller = {static_cast<uint32_t>(rng()), static_cast<uint32_t>(rng()), static_cast<uint32_t>(rng()),
                random_bytes(rng, rng() % 16)};
    r.ino = rng() % 3 ? rng() : 0;
    r.ino2 = rng() % 3 ? rng() : 0;
    r.path = random_bytes(rng, rng() % 40);
    r.path2 = random_bytes(rng, rng() % 40);
    r.mode = static_cast<uint32_t>(rng());
    r.flags = static_cast<uint32_t>(rng());
    r.offset = rng();
    r.length = rng();
    r.size = rng();
    r.uid = static_cast<uint32_t>(rng());
    r.gid = static_cast<uint32_t>(rng());
    r.atime = {static_cast<int64_t>(rng()), static_cast<uint32_t>(rng() % 1000000000)};
    r.mtime = {static_cast<int64_t>(rng() % 2), static_cast<uint32_t>(rng() % 2)};
    r.rdev = rng() % 2 ? rng() : 0;
    r.name = random_bytes(rng, rng() % 20);
    for (uint64_t i = rng() % 4; i > 0; --i) {
      if (rng() % 2) r.inodes_before.emplace_back(rng(), std::nullopt);
      else r.inodes_before.emplace_back(i, inode_with(i, random_bytes(rng, rng() % 10)));
    }
    for (uint64_t i = rng() % 4; i > 0; --i) {
      DirentBefore d{rng(), random_bytes(rng, rng() % 10), std::nullopt};
      if (rng() % 2) d.entry = Dirent{rng(), static_cast<uint32_t>(rng())};
      r.dirents_before.push_back(d);
    }
    for (uint64_t i = rng() % 4; i > 0; --i) {
      XattrBefore x{rng(), random_bytes(rng, rng() % 10), std::nullopt};
      if (rng() % 2) x.value = random_bytes(rng, rng() % 10);
      r.xattrs_before.push_back(x);
    }
    for (uint64_t i = rng() % 3; i > 0; --i) {
      DataBefore d{rng(), rng(), rng(), {}};
      for (uint64_t j = rng() % 4; j > 0; --j)
        d.extents.push_back({rng(), rng(), static_cast<uint32_t>(rng()), static_cast<uint32_t>(rng() % 1000) + 1});
      r.data_before.push_back(d);
    }
    ExactBuffer buf(encode(r));
    auto d = decode_op(r.seq, buf.view());
    REQUIRE(d.is_ok());
    check_same(r, *d);
  }
}

TEST_CASE("unknown tags from a newer writer are skipped", "[oplog]") {
  OpRecord r = full_record();
  const std::string full = encode(r);
  // The header alone: same kind, time and caller, no fields.
  OpRecord bare;
  bare.kind = r.kind;
  bare.ts_ns = r.ts_ns;
  bare.caller = r.caller;
  const std::string header = encode(bare);
  REQUIRE(full.substr(0, header.size()) == header);

  auto unknown = [](uint8_t tag, std::string_view payload) {
    std::string f(1, static_cast<char>(tag));
    codec::put_bytes(f, payload);
    return f;
  };
  // Unknown fields before, in the middle of and after the known ones, with
  // payloads that would be malformed if they were parsed as known fields.
  std::string v = header + unknown(200, "\xff\xff\xff") + unknown(99, "") + full.substr(header.size()) +
                  unknown(255, std::string(300, '\x80'));
  auto d = decode_op(r.seq, v);
  INFO(roam::testing::describe(d.status()));
  REQUIRE(d.is_ok());
  check_same(r, *d);
}

TEST_CASE("truncated records are corrupt unless cut exactly between fields", "[oplog]") {
  const std::string full = encode(full_record());
  const std::set<size_t> boundaries = field_boundaries(full);
  REQUIRE(boundaries.size() > 10);
  for (size_t n = 0; n < full.size(); ++n) {
    INFO("prefix of " << n << " of " << full.size() << " bytes");
    ExactBuffer buf(std::string_view(full).substr(0, n));
    auto d = decode_op(7, buf.view());
    if (boundaries.count(n)) {
      CHECK(d.is_ok());  // a valid record with fewer fields: nothing to detect
    } else {
      REQUIRE_FALSE(d.is_ok());
      CHECK(d.status().err() == EIO);
      CHECK(d.status().message().find("corrupt") != std::string::npos);
    }
  }
}

TEST_CASE("malformed records are corrupt", "[oplog]") {
  std::string good = encode(full_record());
  auto expect_corrupt = [](const std::string& v) {
    auto d = decode_op(1, v);
    INFO(roam::testing::describe(d.status()));
    REQUIRE_FALSE(d.is_ok());
    CHECK(d.status().err() == EIO);
    CHECK(d.status().message().find("corrupt") != std::string::npos);
  };
  SECTION("unknown version") {
    std::string v = good;
    v[0] = 2;
    expect_corrupt(v);
  }
  SECTION("kind zero and kinds past the last") {
    for (int k : {0, static_cast<int>(kLastOpKind) + 1, 255}) {
      std::string v = good;
      v[1] = static_cast<char>(k);
      expect_corrupt(v);
    }
  }
  SECTION("a known field whose payload is malformed") {
    OpRecord bare;
    std::string v = encode(bare);
    v.push_back(1);  // kTagIno
    codec::put_bytes(v, "\x80");  // unterminated varint
    expect_corrupt(v);
  }
  SECTION("an undo inode that does not decode") {
    OpRecord bare;
    std::string v = encode(bare);
    v.push_back(16);  // kTagInodeBefore
    codec::put_bytes(v, "\x05\x09garbage");
    expect_corrupt(v);
  }
  SECTION("an undo extent of length zero") {
    OpRecord bare;
    std::string v = encode(bare);
    std::string p;
    codec::put_varint(p, 0);
    p += encode_extent_value(Extent{0, 1, 0, 0});
    v.push_back(19);  // kTagExtentBefore
    codec::put_bytes(v, p);
    expect_corrupt(v);
  }
  SECTION("a field length past the end") {
    OpRecord bare;
    std::string v = encode(bare);
    v.push_back(3);
    codec::put_varint(v, 100);
    v += "short";
    expect_corrupt(v);
  }
}

TEST_CASE("decoding random garbage never crashes", "[oplog]") {
  std::mt19937_64 rng(31);
  const std::string good = encode(full_record());
  for (int n = 0; n < 30000; ++n) {
    std::string v;
    switch (n % 3) {
      case 0: v = random_bytes(rng, rng() % 64); break;
      case 1:  // a valid header followed by random fields
        v = std::string("\x01", 1) + static_cast<char>(1 + rng() % 14) + random_bytes(rng, rng() % 64);
        break;
      default:  // a valid record with a few bytes flipped
        v = good;
        for (int k = 0; k < 3; ++k) v[rng() % v.size()] = static_cast<char>(rng());
        break;
    }
    ExactBuffer buf(v);
    auto d = decode_op(n, buf.view());
    if (!d.is_ok()) {
      CHECK(d.status().err() == EIO);
      CHECK(d.status().message().find("corrupt") != std::string::npos);
    }
  }
}

TEST_CASE("op kind names", "[oplog]") {
  const std::vector<std::pair<OpKind, std::string>> all = {
      {OpKind::kCreate, "create"},   {OpKind::kMknod, "mknod"},         {OpKind::kMkdir, "mkdir"},
      {OpKind::kSymlink, "symlink"}, {OpKind::kLink, "link"},           {OpKind::kUnlink, "unlink"},
      {OpKind::kRmdir, "rmdir"},     {OpKind::kRename, "rename"},       {OpKind::kWrite, "write"},
      {OpKind::kSetattr, "setattr"}, {OpKind::kFallocate, "fallocate"}, {OpKind::kSetxattr, "setxattr"},
      {OpKind::kRemovexattr, "removexattr"}, {OpKind::kRestore, "restore"}};
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
