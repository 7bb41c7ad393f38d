// The store: one user disk's LMDB environment, write-ahead log and data
// segments, and typed access to its tables (format.h) inside transactions.
//
// State and durability (docs/crash-model.md)
//   - LMDB holds the state as of the last *checkpoint*. It is committed with
//     LMDB's own synced commits, so what is on disk is always a whole commit,
//     on any filesystem that honours fsync.
//   - Every change since then lives in the *root transaction* (root_txn.h),
//     LMDB's one write transaction, kept open across requests; each WriteTxn
//     makes its changes there and, at commit, appends them to the WAL
//     (wal.h) without a flush. A killed process loses nothing: the WAL is in
//     the page cache, and the next open replays it.
//   - sync() (an fsync) flushes the WAL, after the segments when a committed
//     change's data is not inline in the WAL: one flush for a small write.
//   - checkpoint() commits the root transaction to LMDB and starts a new WAL
//     generation (every few seconds, when the WAL grows, at a clean close,
//     and before anything that needs LMDB alone to be complete).
//
// Reading
//   - begin_read() (a writable store): the latest state, through the root
//     transaction, holding Store::mu_ for the ReadTxn's lifetime. Keep it
//     short and do no I/O under it. A thread may nest reads and a write
//     inside a read (mu_ is recursive); other threads wait.
//   - begin_snapshot(): an LMDB read transaction of the last checkpoint, no
//     lock held, for long scans (call checkpoint() first to include the
//     latest changes). A read-only store reads only this way.
//
// Concurrency and lock order
//   0. Store::gc_mu_       one garbage collection at a time (fusefs/gc); held
//                          across many write transactions.
//   1. Store::mu_          the root transaction: held for the life of a
//                          WriteTxn and of a live ReadTxn; recursive.
//   2. Segments::mu_, Wal::mu_   leaf locks.
//   Wal::sync_mu_ and segment flushes are taken without mu_ (sync()).
// Data bytes are appended to segments *before* taking mu_, so a large write
// does not block other writers while its bytes go to disk.
//
// LMDB handles: the Env is shared by all threads; the root transaction is
// used by one thread at a time under mu_; a snapshot ReadTxn by one thread at
// a time (MDB_NOTLS lets it move between threads). Dbis are opened once at
// open() and are valid for the Store's lifetime.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <deque>
#include <vector>

#include "base/lmdb.h"
#include "base/status.h"
#include "fusefs/store/file_io.h"
#include "fusefs/store/format.h"
#include "fusefs/store/root_txn.h"
#include "fusefs/store/segments.h"
#include "fusefs/store/wal.h"

namespace roam {

struct Dbis {
  MDB_dbi meta, inodes, dirents, links, xattrs, extents, blobs, oplog, log_by_ino;
  // Only while a format-1 store is open read-only (a writable open upgrades
  // it first): its index `log_ino`, read instead of log_by_ino, and LMDB's
  // main table, which names the tables, so that a reader notices when a
  // writer has upgraded the store since (oplog::InodeRecords).
  std::optional<MDB_dbi> v1_log_ino;
  MDB_dbi main = 0;
};

// Numbers the writer hands out, derived at open from the last keys of their
// tables (format.h) and advanced in memory.
struct Counters {
  uint64_t next_ino = kRootIno + 1;
  uint64_t next_blob = 1;
  bool operator==(const Counters&) const = default;
};

class Store;

// Read access to the tables. Values returned refer to copies, never to the map.
class StoreTxn {
 public:
  StoreTxn(StoreTxn&&) = default;
  virtual ~StoreTxn() = default;

  Result<std::optional<Inode>> get_inode(uint64_t ino) const;
  // Like get_inode, but a missing inode is ENOENT (the caller had a reference).
  Result<Inode> inode(uint64_t ino) const;
  Result<std::optional<Dirent>> get_dirent(uint64_t parent, std::string_view name) const;
  // Entries of `dir` in name order, starting after `after` (empty: from the
  // start), at most `limit` of them.
  Result<std::vector<std::pair<std::string, Dirent>>> list_dir(uint64_t dir, std::string_view after,
                                                               size_t limit) const;
  Result<bool> dir_is_empty(uint64_t dir) const;
  Result<std::optional<std::string>> get_xattr(uint64_t ino, std::string_view name) const;
  Result<std::vector<std::string>> list_xattrs(uint64_t ino) const;
  // Extents overlapping [offset, offset+length), in file order.
  Result<std::vector<Extent>> extents_in(uint64_t ino, uint64_t offset, uint64_t length) const;
  Result<Blob> blob(uint64_t id) const;
  // Another name of `ino` besides its primary one, if any (from `links`).
  Result<std::optional<std::pair<uint64_t, std::string>>> any_link(uint64_t ino) const;
  // The disk's live data (kMetaLiveBytes), as of this transaction's changes
  // so far less those a WriteTxn has not applied yet (at commit).
  Result<uint64_t> live_bytes() const;
  // The disk's quota on live data; 0: none.
  Result<uint64_t> quota_bytes() const;
  // "/a/b/c" for an inode, following primary names up to the root. A dead
  // inode (nlink 0) is named by its last primary name.
  Result<std::string> path_of(uint64_t ino) const;

  // Calls `visit` for each entry of table `dbi` whose key starts with
  // `prefix`, in key order; stops at the first non-OK Status and returns it.
  Status scan_table(MDB_dbi dbi, std::string_view prefix,
                    const std::function<Status(std::string_view key, std::string_view value)>& visit) const;

  // For reads and cursors only: every write goes through WriteTxn, which
  // journals it for rollback and the WAL.
  const lmdb::Txn& raw() const { return *txn_; }
  const Dbis& dbis() const { return dbis_; }

 protected:
  StoreTxn(const lmdb::Txn* txn, const Dbis& dbis) : txn_(txn), dbis_(dbis) {}
  const lmdb::Txn* txn_;  // the root transaction, or a ReadTxn's own
  const Dbis& dbis_;
};

// A live read (holds Store::mu_ and reads the root transaction) or a
// snapshot (its own LMDB read transaction), see the header comment.
class ReadTxn : public StoreTxn {
 public:
  ReadTxn(ReadTxn&& o) noexcept;
  ~ReadTxn() override = default;

 private:
  friend class Store;
  ReadTxn(const lmdb::Txn& root, const Dbis& dbis, std::unique_lock<std::recursive_mutex> lock)
      : StoreTxn(&root, dbis), lock_(std::move(lock)) {}
  ReadTxn(lmdb::Txn own, const Dbis& dbis);
  std::unique_ptr<lmdb::Txn> own_;  // a snapshot's transaction
  std::unique_lock<std::recursive_mutex> lock_;
};

// One change to the store, made in the root transaction under Store::mu_.
// Every put and delete is journaled twice: the key's value before (so that a
// WriteTxn destroyed without commit() undoes exactly its own changes, and the
// root transaction keeps everyone else's) and the change itself (the WAL
// record that commit() appends). Blob reference counts changed through it
// are accumulated and written once at commit.
class WriteTxn : public StoreTxn {
 public:
  WriteTxn(WriteTxn&&) = default;
  // Undoes every change unless commit() succeeded, before the lock (a
  // member) is released.
  ~WriteTxn() override;

  // Also adds the change of live_bytes_of() to the disk's live data, at commit.
  Status put_inode(const Inode& inode);
  Status put_dirent(uint64_t parent, std::string_view name, const Dirent& d);
  Status del_dirent(uint64_t parent, std::string_view name);
  Status put_link(uint64_t ino, uint64_t parent, std::string_view name);
  Status del_link(uint64_t ino, uint64_t parent, std::string_view name);
  Status put_xattr(uint64_t ino, std::string_view name, std::string_view value);
  Result<bool> del_xattr(uint64_t ino, std::string_view name);

  // Records a new blob (already appended to a segment) with no references yet.
  Result<uint64_t> add_blob(SegmentLocation loc, uint32_t length, uint64_t xxh3);
  // Adds `delta` to a blob's reference count at commit.
  void ref_blob(uint64_t blob, int64_t delta) { ref_deltas_[blob] += delta; }
  // Applies the reference count changes so far, now, and returns the blobs
  // whose count reached zero (GC frees them).
  Result<std::vector<uint64_t>> apply_refs_now();

  // Makes [offset, offset+length) of `ino` map to `replacement` (or to a hole
  // when nullopt), trimming or splitting the extents that overlapped it. The
  // pieces that were mapped there are appended to `replaced`; they keep their
  // blob references (now owned by the op log's undo payload).
  Status remap(uint64_t ino, uint64_t offset, uint64_t length, const std::optional<Extent>& replacement,
               std::vector<Extent>& replaced);

  // Gives a file that has no data yet these extents (sorted, non-overlapping),
  // each taking a blob reference. For restoring a file as a new inode: no
  // overlap search, appended in key order.
  Status add_extents_to_empty(uint64_t ino, const std::vector<Extent>& extents);

  // The new data of a blob added by this transaction, for its WAL record:
  // when a transaction's new data is at most kWalInlineData bytes it goes
  // into the record (an fsync then flushes the WAL alone). `data` must stay
  // valid until commit().
  void note_data(SegmentLocation loc, std::string_view data);

  // Writes to any table, for the layers that keep tables of their own (the
  // op log); journaled like the typed writes above. In an MDB_DUPSORT table
  // put() adds one value and del(dbi, key, value) removes one.
  Status put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags = 0);
  Result<bool> del(MDB_dbi dbi, std::string_view key);
  Result<bool> del(MDB_dbi dbi, std::string_view key, std::string_view value);

  Counters& counters() { return counters_; }
  // Sets the disk's quota on live data (0: none).
  Status set_quota(uint64_t bytes);
  // A restore may take live data over the quota: it brings back what the
  // user had, and must never be refused for space (docs/security.md).
  void exempt_from_quota() { quota_exempt_ = true; }
  // Applies the reference counts and the change of live data, appends the
  // WAL record and keeps the changes in the root transaction. On failure
  // (EDQUOT: the change adds live data and takes it over the quota; ENOSPC
  // from the WAL, ...) the changes are undone and nothing is logged.
  Status commit();

 private:
  friend class Store;
  // A key's value before this transaction first changed it (nullopt:
  // absent), or for a dup table one (key, value) pair that was added or
  // removed.
  struct Before {
    MDB_dbi dbi;
    std::string key;
    std::optional<std::string> value;
    bool dup_pair = false;  // `value` is the pair's value; `existed` says which way
    bool existed = false;
  };
  WriteTxn(lmdb::Txn& root, Store& store, std::unique_lock<std::recursive_mutex> lock);
  lmdb::Txn& root() { return *root_; }
  Status put_extent(uint64_t ino, const Extent& e);
  Status apply_ref_deltas(std::vector<uint64_t>* unreferenced);
  Status apply_live_delta();
  Status remember(MDB_dbi dbi, std::string_view key);
  Status note_if_moved(std::string_view key, std::string_view value);
  void log_op(uint8_t op, MDB_dbi dbi, std::string_view key, std::string_view value);
  Status undo();

  Store* store_;
  lmdb::Txn* root_;
  std::unique_lock<std::recursive_mutex> lock_;
  Counters counters_;
  std::map<uint64_t, int64_t> ref_deltas_;
  int64_t live_delta_ = 0;  // put_inode's changes of live data, applied at commit
  bool quota_exempt_ = false;
  std::optional<uint64_t> new_quota_;  // set_quota's, for Store::quota_bytes() at commit
  std::optional<uint64_t> new_live_;   // apply_live_delta's, for Store::live_bytes() at commit
  std::deque<Before> before_;  // a deque: a big change (a copy, a restore) never moves what it holds
  std::set<std::pair<MDB_dbi, std::string>> remembered_;
  std::string redo_;  // the WAL record's operations
  std::vector<std::pair<SegmentLocation, std::string_view>> data_;  // note_data
  size_t data_bytes_ = 0;
  uint64_t blobs_added_ = 0;  // and moved: blobs naming bytes new to the segments
  bool committed_ = false;
};

class Store {
 public:
  struct Options {
    bool read_only = false;  // roamctl on an unmounted or mounted store
    // A read-only open of a store no writer holds first replays its WAL
    // (a writable open, then a checkpoint) so the reader sees the latest
    // state; false reads the last checkpoint as it is, writing nothing
    // (the broker's status, which must stay cheap for every disk).
    bool replay_wal_for_reader = true;
    size_t map_size = size_t{1} << 40;  // address space only; the file grows as used
    FileIo* io = nullptr;  // nullptr: the real OS
    // Index entries copied per transaction when a writable open upgrades a
    // format-1 store.
    size_t upgrade_batch = size_t{1} << 20;
  };

  // Creates an empty store in `dir`, which must be absent or an empty directory.
  static Status create(const std::string& dir);
  // Opens an existing store. A writable open takes an exclusive lock on the
  // store: a second writer fails with EBUSY and a sentence saying who holds it.
  // A writable open of an older format upgrades the store first (and
  // resumes an upgrade that was interrupted); a read-only open reads it as
  // it is.
  static Result<std::unique_ptr<Store>> open(const std::string& dir, Options options);
  ~Store();

  // The latest state (a read-only store: the last checkpoint). See the
  // header comment: holds Store::mu_ until the ReadTxn is destroyed.
  Result<ReadTxn> begin_read() const;
  // The last checkpoint, holding no lock.
  Result<ReadTxn> begin_snapshot() const;
  // Blocks until no other thread holds mu_. EROFS on a read-only store.
  Result<WriteTxn> begin_write();

  // Durability point: every WriteTxn committed so far survives a power loss
  // when this returns. Flushes the segments (when a committed change's data
  // is not inline in the WAL), then the WAL; skips what needs no flush, and
  // concurrent callers share flushes. Does not take mu_.
  Status sync();

  // Commits the root transaction to LMDB (synced) and starts a new WAL
  // generation; nothing to do when nothing changed since the last one.
  // Holds mu_ for the commit: writers and live readers wait.
  Status checkpoint();
  // Whether the WAL has grown past `wal_bytes` since the last checkpoint.
  bool wal_bytes_past(uint64_t wal_bytes) const;
  // The disk's quota on live data (0: none), as of the last committed
  // set_quota; no lock, so it may lag a commit in progress (the commit itself
  // checks the quota in its transaction). For the writes' pre-check, which
  // costs nothing when there is no quota.
  uint64_t quota_bytes() const { return quota_bytes_.load(std::memory_order_relaxed); }
  // The disk's live data as of the last committed write, likewise without a
  // lock (statfs, which must not wait behind a long restore).
  uint64_t live_bytes() const { return live_bytes_.load(std::memory_order_relaxed); }
  // Whether anything changed since the last checkpoint.
  bool changed_since_checkpoint() const { return writes_since_checkpoint_.load() != 0; }

  // Unmaps the LMDB pages this process has touched. They stay in the OS page
  // cache and fault back in when next read, so this costs little; without it
  // every page ever read counts as roamfs's resident memory (a million-file
  // disk would keep ~900 MiB "resident"). Safe while transactions run: the
  // map is read-only and shared, so a dropped page is refetched unchanged
  // (the root transaction's changed pages are in its own memory).
  void trim_resident_memory();

  // The numbers the next WriteTxn starts from.
  Counters counters() const {
    std::lock_guard lock(mu_);
    return counters_;
  }
  Segments& segments() { return *segments_; }
  std::mutex& gc_mutex() { return gc_mu_; }
  const Dbis& dbis() const { return dbis_; }
  const std::string& dir() const { return dir_; }
  bool read_only() const { return read_only_; }

 private:
  friend class WriteTxn;
  Store() = default;
  // The counters and the quota, from the tables.
  Status load_counters();
  // Counts the live data of a store that has no kMetaLiveBytes (made before
  // it existed) and stores it. Writable stores.
  Status count_live_bytes_once();
  Status open_wal();
  // Applies the WAL's records onto the checkpoint, then checkpoints.
  Status recover();
  Result<bool> apply_wal_record(std::string_view payload);
  Status apply_wal_op(WalOp op, uint8_t table, std::string_view key, std::string_view value);
  Status finish_checkpoint();  // requires mu_
  void keep_lmdb_reserve();    // requires mu_
  // The root transaction failed in a way LMDB cannot undo (map full, I/O
  // error): start again from the checkpoint and replay the WAL.
  Status rebuild_root();  // requires mu_
  Result<MDB_dbi> dbi_of(uint8_t table) const;
  uint8_t table_of(MDB_dbi dbi) const;

  std::string dir_;
  bool read_only_ = false;
  int lock_fd_ = -1;
  std::unique_ptr<FileIo> owned_io_;
  FileIo* io_ = nullptr;
  lmdb::Env env_;
  Dbis dbis_{};
  std::unique_ptr<Segments> segments_;
  std::unique_ptr<Wal> wal_;
  std::unique_ptr<RootTxn> root_;  // writable stores only; after env_, before nothing it uses
  void* map_addr_ = nullptr;  // LMDB's map of data.mdb, for trim_resident_memory
  size_t map_len_ = 0;
  std::mutex gc_mu_;
  mutable std::recursive_mutex mu_;
  Counters counters_;  // committed values; guarded by mu_
  uint64_t wal_generation_ = 0;  // guarded by mu_
  std::atomic<uint64_t> writes_since_checkpoint_{0};
  std::atomic<uint64_t> quota_bytes_{0};  // quota_bytes()
  std::atomic<uint64_t> live_bytes_{0};   // live_bytes()
  // Commits whose data is not inline in the WAL, so that sync() must flush
  // the segments first; and how many of them the last segment flush covered.
  std::atomic<uint64_t> data_commits_{0};
  std::atomic<uint64_t> data_commits_synced_{0};
  // Bytes of new data inlined in the WAL since the last sync (kWalInlineBudget).
  std::atomic<uint64_t> inlined_since_sync_{0};
};

}  // namespace roam
