// Store format 1, written directly, for the upgrade tests: format 1 kept the
// per-inode op log index as `log_ino`, key be64 ino ++ be64 seq, empty value,
// where format 2 has the MDB_DUPSORT table `log_by_ino`, and one op record
// per value of `oplog`, every inode before-image whole, where format 2 has
// chunks of records (docs/store-format.md, docs/oplog-format.md).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fusefs/oplog/chunk.h"
#include "fusefs/store/codec.h"
#include "base/lmdb.h"
#include "tests/unit/helpers.h"

namespace roam::testing {

using IndexEntries = std::vector<std::pair<uint64_t, uint64_t>>;  // (ino, seq), in table order

inline lmdb::Env open_raw_env(const std::string& dir) {
  auto env = lmdb::Env::open(dir, 0, size_t{1} << 30, 16);
  INFO("status: " << describe(env.status()));
  REQUIRE(env.is_ok());
  return std::move(env).value();
}

inline void set_format_version(const std::string& dir, int version) {
  REQUIRE(::unlink((dir + "/FORMAT").c_str()) == 0);
  write_file(dir + "/FORMAT", "roamdisk store\nversion " + std::to_string(version) + "\n");
}

// Every entry of the format-2 index `dbi`, in table order.
inline IndexEntries read_log_by_ino(const lmdb::Txn& txn, MDB_dbi dbi) {
  lmdb::Cursor cur = must(lmdb::Cursor::open(txn, dbi));
  IndexEntries out;
  for (auto e = must(cur.first()); e; e = must(cur.next())) {
    REQUIRE(e->key.size() == 8);
    REQUIRE(e->value.size() == 8);
    out.emplace_back(codec::get_be64(e->key), codec::get_be64(e->value));
  }
  return out;
}

inline IndexEntries read_log_by_ino(const std::string& dir) {
  lmdb::Env env = open_raw_env(dir);
  lmdb::Txn txn = must(lmdb::Txn::begin(env, true));
  return read_log_by_ino(txn, must(txn.open_dbi("log_by_ino", 0)));
}

// True when the store's LMDB environment has a table of this name.
inline bool has_table(const std::string& dir, const char* name) {
  lmdb::Env env = open_raw_env(dir);
  lmdb::Txn txn = must(lmdb::Txn::begin(env, true));
  auto r = txn.open_dbi(name, 0);
  if (!r.is_ok()) REQUIRE(r.status().err() == ENOENT);
  return r.is_ok();
}

// Rewrites the op log as format 1 kept it: one value per record, each inode
// image made whole by undoing the records newest first from the live inodes.
inline void rewrite_log_as_v1(lmdb::Txn& txn) {
  MDB_dbi log = must(txn.open_dbi("oplog", 0));
  MDB_dbi inodes = must(txn.open_dbi("inodes", 0));
  std::vector<OpRecord> records;
  {
    lmdb::Cursor cur = must(lmdb::Cursor::open(txn, log));
    for (auto e = must(cur.first()); e; e = must(cur.next())) {
      oplog::Chunk c = must(oplog::Chunk::parse(codec::get_be64(e->key), e->value));
      for (uint64_t seq = c.first(); seq <= c.last(); ++seq) records.push_back(must(c.record(seq)));
    }
  }
  std::map<uint64_t, std::optional<Inode>> after;  // an inode as it was after the record being undone
  for (auto it = records.rbegin(); it != records.rend(); ++it) {
    for (InodeBefore& b : it->inodes_before) {
      if (!after.contains(b.ino)) {
        auto v = must(txn.get(inodes, codec::be64(b.ino)));
        after[b.ino] = v ? std::optional<Inode>(must(decode_inode(b.ino, *v))) : std::nullopt;
      }
      b.image = must(b.before(after[b.ino]));
      b.fields = kAllInodeFields;
      after[b.ino] = b.image;
    }
  }
  REQUIRE_OK(txn.drop(log));
  log = must(txn.open_dbi("oplog", MDB_CREATE));
  for (const OpRecord& r : records) REQUIRE_OK(txn.put(log, codec::be64(r.seq), encode_record_v1(r)));
}

// Rewrites a closed format-2 store as format 1: `log_ino` holds `entries`
// (default: those of log_by_ino), `log_by_ino` is dropped unless
// `keep_first` > 0, in which case it keeps only its first `keep_first`
// entries (an upgrade that stopped part-way), and FORMAT says version 1.
inline void downgrade_to_v1(const std::string& dir, std::optional<IndexEntries> entries = std::nullopt,
                            size_t keep_first = 0) {
  {
    lmdb::Env env = open_raw_env(dir);
    lmdb::Txn txn = must(lmdb::Txn::begin(env, false));
    MDB_dbi by_ino = must(txn.open_dbi("log_by_ino", 0));
    const IndexEntries all = entries ? *entries : read_log_by_ino(txn, by_ino);
    REQUIRE_OK(txn.drop(by_ino));
    rewrite_log_as_v1(txn);
    MDB_dbi old = must(txn.open_dbi("log_ino", MDB_CREATE));
    for (const auto& [ino, seq] : all) REQUIRE_OK(txn.put(old, codec::be64_pair(ino, seq), {}));
    if (keep_first > 0) {
      MDB_dbi part = must(txn.open_dbi("log_by_ino", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED));
      for (size_t i = 0; i < keep_first && i < all.size(); ++i)
        REQUIRE_OK(txn.put(part, codec::be64(all[i].first), codec::be64(all[i].second)));
    }
    REQUIRE_OK(txn.commit());
    REQUIRE_OK(env.sync());
  }
  set_format_version(dir, 1);
}

}  // namespace roam::testing
