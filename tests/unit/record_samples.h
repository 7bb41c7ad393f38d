// Sample op log records for the record and chunk tests.
#pragma once

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <random>
#include <string>

#include "fusefs/oplog/record.h"
#include "tests/unit/helpers.h"

namespace roam::testing {

inline Inode inode_with(uint64_t ino, const std::string& name) {
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
inline OpRecord full_record() {
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
  r.inodes_before.push_back({17, inode_with(17, "a b")});
  r.inodes_before.push_back({99, std::nullopt});  // created by the op
  r.inodes_before.push_back({1, inode_with(1, "")});
  r.dirents_before.push_back({1, "a b", Dirent{17, S_IFDIR}});
  r.dirents_before.push_back({1, "c", std::nullopt});
  r.xattrs_before.push_back({17, "user.x", std::string("v\0v", 3)});
  r.xattrs_before.push_back({17, "user.empty", std::string()});  // present but empty
  r.xattrs_before.push_back({17, "user.absent", std::nullopt});
  r.data_before.push_back({17, 5ull << 30, 131073, {{5ull << 30, 7, 0, 131072}, {(5ull << 30) + 131072, 8, 100, 1}}});
  r.data_before.push_back({18, 0, 4096, {}});  // a hole
  return r;
}

// A record as a chunk holds it after another of the same caller: a partial
// inode image, an undo range that is the record's own, names taken from the
// record's paths, and times both near the record's and far from it.
inline OpRecord narrow_record() {
  OpRecord r;
  r.seq = 43;
  r.ts_ns = 1795774500123000000;
  r.kind = OpKind::kWrite;
  r.caller = {1000, 1001, 4242, "bash"};
  r.ino = 17;
  r.path = "/home/u/a b";
  r.path2 = "/home/u/new";
  r.offset = 4096;
  r.length = 8192;
  r.size = 12288;
  r.atime = {INT64_MAX, 7};               // too far from ts_ns for a relative time
  r.mtime = {1795774499, 999999999};      // just before ts_ns
  // Partial images hold only their fields (the rest zero, as decoded).
  Inode size_and_mtime;  // what a write changed
  size_and_mtime.ino = 17;
  size_and_mtime.size = 12345;
  size_and_mtime.mtime = {-1, 999999999};
  r.inodes_before.push_back({17, size_and_mtime, kFieldSize | kFieldMtime});
  Inode owner_and_target;
  owner_and_target.ino = 5;
  owner_and_target.uid = 1000;
  owner_and_target.symlink_target = "target";
  r.inodes_before.push_back({5, owner_and_target, kFieldUid | kFieldSymlink});
  r.dirents_before.push_back({1, "new", Dirent{17, S_IFREG}});
  r.xattrs_before.push_back({9, "user.y", std::string("z")});
  r.data_before.push_back({17, 4096, 8192, {{4096, 11, 512, 8192}}});
  return r;
}

// The record before narrow_record in its chunk: later in time, same caller.
inline RecordContext narrow_record_prev() { return {1795774500123456789, {1000, 1001, 4242, "bash"}}; }

inline void check_same(const OpRecord& a, const OpRecord& b) {
  CHECK(a.seq == b.seq);
  CHECK(a.ts_ns == b.ts_ns);
  CHECK(a.kind == b.kind);
  CHECK(a.caller.uid == b.caller.uid);
  CHECK(a.caller.gid == b.caller.gid);
  CHECK(a.caller.pid == b.caller.pid);
  CHECK(a.caller.comm == b.caller.comm);
  CHECK(a.caller.desktop == b.caller.desktop);
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
    CHECK(a.inodes_before[i].ino == b.inodes_before[i].ino);
    CHECK(a.inodes_before[i].image == b.inodes_before[i].image);
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

// A record with random arguments and undo lists; every inode image whole.
inline OpRecord random_record(std::mt19937_64& rng) {
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
    if (rng() % 2) r.inodes_before.push_back({rng(), std::nullopt});
    else r.inodes_before.push_back({i, inode_with(i, random_bytes(rng, rng() % 10))});
  }
  for (uint64_t i = rng() % 4; i > 0; --i) {
    DirentBefore d{rng(), random_bytes(rng, rng() % 10), std::nullopt};
    if (rng() % 2) d.entry = Dirent{rng(), static_cast<uint32_t>(rng() % 16) << 12};  // S_IFMT bits
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
  return r;
}

}  // namespace roam::testing
