// The store: one user disk's LMDB environment and data segments, and typed
// access to its tables (format.h) inside transactions.
//
// Concurrency and lock order
//   0. Store::gc_mu_       one garbage collection at a time (fusefs/gc); held
//                          across many write transactions.
//   1. Store::writer_mu_   one write transaction at a time; held for the life
//                          of a WriteTxn. Taken before LMDB's own writer lock.
//   2. Segments::mu_       leaf lock inside Segments.
// Data bytes are appended to segments *before* taking writer_mu_, so a large
// write does not block other writers while its bytes go to disk.
//
// LMDB handles: the Env is shared by all threads; each ReadTxn/WriteTxn is used
// by one thread at a time (MDB_NOTLS lets a read transaction move between
// threads, which libfuse's worker pool needs). Dbis are opened once at open()
// and are valid for the Store's lifetime.
//
// Durability: LMDB runs with MDB_NOSYNC, so a commit reaches the OS page cache
// but not the disk; a killed process loses nothing committed. sync() makes
// everything committed so far durable: segments first, then LMDB, so that no
// durable metadata ever names data that is not durable. docs/crash-model.md.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "fusefs/store/file_io.h"
#include "fusefs/store/format.h"
#include "base/lmdb.h"
#include "fusefs/store/segments.h"
#include "base/status.h"

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
  // "/a/b/c" for an inode, following primary names up to the root. A dead
  // inode (nlink 0) is named by its last primary name.
  Result<std::string> path_of(uint64_t ino) const;

  // Calls `visit` for each entry of table `dbi` whose key starts with
  // `prefix`, in key order; stops at the first non-OK Status and returns it.
  Status scan_table(MDB_dbi dbi, std::string_view prefix,
                    const std::function<Status(std::string_view key, std::string_view value)>& visit) const;

  lmdb::Txn& raw() { return txn_; }
  const lmdb::Txn& raw() const { return txn_; }
  const Dbis& dbis() const { return dbis_; }

 protected:
  StoreTxn(lmdb::Txn txn, const Dbis& dbis) : txn_(std::move(txn)), dbis_(dbis) {}
  lmdb::Txn txn_;
  const Dbis& dbis_;
};

class ReadTxn : public StoreTxn {
 public:
  ReadTxn(lmdb::Txn txn, const Dbis& dbis) : StoreTxn(std::move(txn), dbis) {}
};

// The single write transaction. Aborts (and releases the writer lock) in its
// destructor unless commit() succeeded. Blob reference counts changed through
// it are accumulated and written once at commit.
class WriteTxn : public StoreTxn {
 public:
  WriteTxn(WriteTxn&&) = default;
  // Aborts before the writer lock (a member) is released.
  ~WriteTxn() override { txn_.abort(); }

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

  Counters& counters() { return counters_; }
  Status commit();

 private:
  friend class Store;
  WriteTxn(lmdb::Txn txn, Store& store, std::unique_lock<std::mutex> lock);
  Status put_extent(uint64_t ino, const Extent& e);
  Status apply_ref_deltas(std::vector<uint64_t>* unreferenced);

  Store* store_;
  std::unique_lock<std::mutex> lock_;
  Counters counters_;
  std::map<uint64_t, int64_t> ref_deltas_;
};

class Store {
 public:
  struct Options {
    bool read_only = false;  // roamctl on an unmounted or mounted store
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

  Result<ReadTxn> begin_read() const;
  // Blocks until no other write transaction is open.
  Result<WriteTxn> begin_write();

  // Durability point: segments, then LMDB. See the header comment. Either
  // flush is skipped when nothing was written to it since the last sync
  // (fsync of a directory right after fsync of a file costs nothing).
  Status sync();

  // Unmaps the LMDB pages this process has touched. They stay in the OS page
  // cache and fault back in when next read, so this costs little; without it
  // every page ever read counts as roamfs's resident memory (a million-file
  // disk would keep ~900 MiB "resident"). Safe while transactions run: the
  // map is read-only and shared, so a dropped page is refetched unchanged.
  void trim_resident_memory();

  Segments& segments() { return *segments_; }
  std::mutex& gc_mutex() { return gc_mu_; }
  const Dbis& dbis() const { return dbis_; }
  const std::string& dir() const { return dir_; }
  bool read_only() const { return read_only_; }

 private:
  friend class WriteTxn;
  Store() = default;
  Status load_counters();

  std::string dir_;
  bool read_only_ = false;
  int lock_fd_ = -1;
  std::unique_ptr<FileIo> owned_io_;
  FileIo* io_ = nullptr;
  lmdb::Env env_;
  Dbis dbis_{};
  std::unique_ptr<Segments> segments_;
  void* map_addr_ = nullptr;  // LMDB's map of data.mdb, for trim_resident_memory
  size_t map_len_ = 0;
  std::mutex gc_mu_;
  std::mutex writer_mu_;
  Counters counters_;  // committed values; guarded by writer_mu_
  std::atomic<uint64_t> commits_{0};  // LMDB commits so far
  std::atomic<uint64_t> synced_commits_{0};  // commits_ as of the last completed sync
};

}  // namespace roam
