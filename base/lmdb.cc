#include "base/lmdb.h"

#include <sys/stat.h>

namespace roam::lmdb {

Status status_from(int rc, std::string_view what) {
  if (rc == MDB_SUCCESS) return Status::ok();
  std::string msg = std::string(what) + ": " + mdb_strerror(rc);
  switch (rc) {
    case MDB_MAP_FULL:
      return Status::error(ENOSPC, msg + " (metadata map is full)");
    case MDB_KEYEXIST:  // an MDB_APPEND or MDB_NOOVERWRITE put that could not be done
      return Status::error(EEXIST, msg);
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
      return Status::corrupt(msg);
    default:
      // LMDB passes through errno values (ENOSPC, EIO, EACCES, ...) unchanged.
      return Status::error(rc > 0 ? rc : EIO, msg);
  }
}

Result<Env> Env::open(const std::string& dir, unsigned flags, size_t map_size, unsigned max_dbs) {
  Env env;
  if (int rc = mdb_env_create(env.env_.out()); rc) return status_from(rc, "mdb_env_create");
  if (int rc = mdb_env_set_mapsize(env.get(), map_size); rc) return status_from(rc, "mdb_env_set_mapsize");
  if (int rc = mdb_env_set_maxdbs(env.get(), max_dbs); rc) return status_from(rc, "mdb_env_set_maxdbs");
  if (int rc = mdb_env_open(env.get(), dir.c_str(), flags | MDB_NOTLS, 0600); rc)
    return status_from(rc, "opening LMDB environment in " + dir);
  return env;
}

Status Env::sync() { return status_from(mdb_env_sync(get(), 1), "mdb_env_sync"); }

Result<Txn> Txn::begin(const Env& env, bool read_only) {
  Txn t;
  int rc = mdb_txn_begin(env.get(), nullptr, read_only ? MDB_RDONLY : 0, t.txn_.out());
  if (rc) return status_from(rc, "mdb_txn_begin");
  return t;
}

Status Txn::commit() {
  int rc = mdb_txn_commit(txn_.release());  // frees the txn even on failure
  return status_from(rc, "mdb_txn_commit");
}

Result<MDB_dbi> Txn::open_dbi(const char* name, unsigned flags) {
  MDB_dbi dbi = 0;
  int rc = mdb_dbi_open(get(), name, flags, &dbi);
  const std::string what = name ? name : "(main)";
  if (rc == MDB_NOTFOUND) return Status::not_found("table " + what + " does not exist");
  if (rc) return status_from(rc, "opening table " + what);
  return dbi;
}

Result<unsigned> Txn::dbi_flags(MDB_dbi dbi) const {
  unsigned flags = 0;
  if (int rc = mdb_dbi_flags(get(), dbi, &flags); rc) return status_from(rc, "mdb_dbi_flags");
  return flags;
}

Result<std::optional<std::string_view>> Txn::get(MDB_dbi dbi, std::string_view key) const {
  MDB_val k = to_val(key), v{};
  int rc = mdb_get(get(), dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string_view>{};
  if (rc) return status_from(rc, "mdb_get");
  return std::optional<std::string_view>{from_val(v)};
}

Status Txn::put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags) {
  MDB_val k = to_val(key), v = to_val(value);
  return status_from(mdb_put(get(), dbi, &k, &v, flags), "mdb_put");
}

Result<bool> Txn::del(MDB_dbi dbi, std::string_view key) {
  MDB_val k = to_val(key);
  int rc = mdb_del(get(), dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  if (rc) return status_from(rc, "mdb_del");
  return true;
}

Result<bool> Txn::del(MDB_dbi dbi, std::string_view key, std::string_view value) {
  MDB_val k = to_val(key), v = to_val(value);
  int rc = mdb_del(get(), dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return false;
  if (rc) return status_from(rc, "mdb_del");
  return true;
}

Status Txn::drop(MDB_dbi dbi) { return status_from(mdb_drop(get(), dbi, 1), "mdb_drop"); }

Result<Cursor> Cursor::open(const Txn& txn, MDB_dbi dbi) {
  Cursor c;
  if (int rc = mdb_cursor_open(txn.get(), dbi, c.cur_.out()); rc) return status_from(rc, "mdb_cursor_open");
  return c;
}

Result<std::optional<Cursor::Entry>> Cursor::move(std::string_view key, MDB_cursor_op op) {
  MDB_val k = to_val(key), v{};
  int rc = mdb_cursor_get(cur_.get(), &k, &v, op);
  if (rc == MDB_NOTFOUND) return std::optional<Entry>{};
  if (rc) return status_from(rc, "mdb_cursor_get");
  return std::optional<Entry>{Entry{from_val(k), from_val(v)}};
}

Result<std::optional<Cursor::Entry>> Cursor::seek(std::string_view key) { return move(key, MDB_SET_RANGE); }
Result<std::optional<Cursor::Entry>> Cursor::seek_last() { return move({}, MDB_LAST); }
Result<std::optional<Cursor::Entry>> Cursor::first() { return move({}, MDB_FIRST); }
Result<std::optional<Cursor::Entry>> Cursor::next() { return move({}, MDB_NEXT); }
Result<std::optional<Cursor::Entry>> Cursor::prev() { return move({}, MDB_PREV); }

Result<std::optional<Cursor::Entry>> Cursor::move_and_read(std::string_view key, std::string_view value,
                                                           MDB_cursor_op op) {
  MDB_val k = to_val(key), v = to_val(value);
  int rc = mdb_cursor_get(cur_.get(), &k, &v, op);
  if (rc == MDB_NOTFOUND) return std::optional<Entry>{};
  if (rc) return status_from(rc, "mdb_cursor_get");
  return move({}, MDB_GET_CURRENT);
}

Result<std::optional<Cursor::Entry>> Cursor::seek_key(std::string_view key) { return move_and_read(key, {}, MDB_SET); }
Result<std::optional<Cursor::Entry>> Cursor::seek_value(std::string_view key, std::string_view value) {
  return move_and_read(key, value, MDB_GET_BOTH_RANGE);
}
Result<std::optional<Cursor::Entry>> Cursor::next_value() { return move({}, MDB_NEXT_DUP); }
Result<std::optional<Cursor::Entry>> Cursor::last_value() { return move_and_read({}, {}, MDB_LAST_DUP); }


}  // namespace roam::lmdb
