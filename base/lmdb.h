// Thin RAII layer over the LMDB C API, in the manner of lmdbxx.
//
// - Env, Txn and Cursor are move-only handles; a Txn that is neither committed nor
//   explicitly aborted aborts in its destructor, so an early error return never
//   leaves a write transaction open.
// - A key that is absent is std::nullopt; only real failures are a Status.
// - Values returned as std::string_view point into LMDB's map and stay valid until
//   the transaction that produced them ends (or, in a write transaction, until the
//   next write to the same database).
//
// Threading: the environment is opened with MDB_NOTLS, so a read transaction is not
// bound to the thread that began it and libfuse's worker threads may each begin
// their own. Only one write transaction exists at a time (LMDB's writer lock; the
// store additionally serialises writers with its own mutex, see store.h).
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "base/status.h"

namespace roam::lmdb {

// An LMDB return code as a Status. MDB_MAP_FULL becomes ENOSPC: for a user the
// store is full exactly as if the disk were.
Status status_from(int rc, std::string_view what);

inline MDB_val to_val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}
inline std::string_view from_val(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

// Owns one LMDB handle (an MDB_env, MDB_txn or MDB_cursor) and frees it with
// `Free` when destroyed or overwritten by a move; move-only. Env, Txn and
// Cursor hold one each, so they are move-only and free their handle too.
template <typename T, void (*Free)(T*)>
class Handle {
 public:
  Handle() = default;
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  T* get() const { return p_; }
  // Where an LMDB call that makes a handle (mdb_env_create, ...) stores it;
  // the Handle must be empty.
  T** out() { return &p_; }
  // Gives the handle up, to a call that frees it itself (mdb_txn_commit).
  T* release() { return std::exchange(p_, nullptr); }
  void reset() {
    if (p_) Free(std::exchange(p_, nullptr));
  }

 private:
  T* p_ = nullptr;
};

class Env {
 public:
  // Opens (creating if needed) the environment in directory `dir`.
  static Result<Env> open(const std::string& dir, unsigned flags, size_t map_size, unsigned max_dbs);
  // Flushes LMDB's data and meta pages to stable storage (fsync).
  Status sync();
  MDB_env* get() const { return env_.get(); }

 private:
  Handle<MDB_env, mdb_env_close> env_;
};

// Aborted when destroyed or overwritten unless committed (or aborted) first.
class Txn {
 public:
  static Result<Txn> begin(const Env& env, bool read_only);
  Status commit();
  void abort() { txn_.reset(); }
  MDB_txn* get() const { return txn_.get(); }
  bool active() const { return txn_.get() != nullptr; }

  // Opens a named database (MDB_CREATE in `flags` creates it in a write
  // transaction); a missing one without MDB_CREATE is ENOENT. A null `name`
  // is LMDB's main table, whose keys are the names of the others.
  Result<MDB_dbi> open_dbi(const char* name, unsigned flags);

  // The persistent flags a table was created with (MDB_DUPSORT, ...).
  Result<unsigned> dbi_flags(MDB_dbi dbi) const;

  Result<std::optional<std::string_view>> get(MDB_dbi dbi, std::string_view key) const;
  Status put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags = 0);
  // Deletes `key`; returns false when it was not there. In an MDB_DUPSORT
  // table this deletes every value of the key.
  Result<bool> del(MDB_dbi dbi, std::string_view key);
  // MDB_DUPSORT tables: deletes one value of `key`; false when the pair was
  // not there.
  Result<bool> del(MDB_dbi dbi, std::string_view key, std::string_view value);
  // Deletes the table itself (its name and every entry) and closes `dbi`.
  Status drop(MDB_dbi dbi);

 private:
  Handle<MDB_txn, mdb_txn_abort> txn_;
};

// A cursor over one database inside one transaction; closed in its destructor.
// In a write transaction it must be destroyed before the transaction commits
// or aborts: LMDB frees a write transaction's cursors when it ends.
class Cursor {
 public:
  struct Entry {
    std::string_view key;
    std::string_view value;
  };

  static Result<Cursor> open(const Txn& txn, MDB_dbi dbi);

  // Positioning; each returns the entry landed on, or nullopt at the end/start.
  // In an MDB_DUPSORT table an entry is one (key, value) pair: next() and
  // prev() step through the values of a key before moving to the next key,
  // and seek_last() lands on the last value of the last key.
  Result<std::optional<Entry>> seek(std::string_view key);        // first key >= key
  Result<std::optional<Entry>> seek_last();
  Result<std::optional<Entry>> first();
  Result<std::optional<Entry>> next();
  Result<std::optional<Entry>> prev();

  // MDB_DUPSORT tables only. nullopt when the key is absent or has no such value.
  Result<std::optional<Entry>> seek_key(std::string_view key);   // exactly `key`, its first value
  // Exactly `key`, its first value >= `value` (MDB_GET_BOTH_RANGE).
  Result<std::optional<Entry>> seek_value(std::string_view key, std::string_view value);
  Result<std::optional<Entry>> next_value();  // the next value of the current key
  Result<std::optional<Entry>> last_value();  // the last value of the current key

 private:
  Result<std::optional<Entry>> move(std::string_view key, MDB_cursor_op op);
  // For operations that leave the key (or the value) as passed in: make the
  // move, then read the entry back from the map (MDB_GET_CURRENT).
  Result<std::optional<Entry>> move_and_read(std::string_view key, std::string_view value, MDB_cursor_op op);
  Handle<MDB_cursor, mdb_cursor_close> cur_;
};

}  // namespace roam::lmdb
