// The write-ahead log file (wal_format.h, docs/wal-format.md): records are
// appended without a flush as Mutations commit, flushed by sync() (an
// fsync), and replayed after a crash onto the last checkpoint.
//
// Thread safety: append() and start() are called with the store's writer
// lock held (one at a time); sync() and bytes_since_start() from any thread.
// Wal::mu_ is a leaf lock; sync_mu_ is taken before it and never while the
// store's writer lock is held by the same thread for longer than a flush.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "base/status.h"
#include "fusefs/store/file_io.h"
#include "fusefs/store/wal_format.h"

namespace roam {

class Wal {
 public:
  // Opens STORE/wal, creating it (generation 0) if it does not exist. A
  // header that is damaged or names another store is corrupt: the records
  // after it cannot be trusted to be this store's.
  static Result<std::unique_ptr<Wal>> open(const std::string& store_dir, FileIo& io, std::string_view uuid);
  ~Wal();
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  // The generation the header names.
  uint64_t generation() const { return generation_; }

  // Calls `apply` for each valid record of the current generation, lsn 1, 2,
  // ..., and stops at the first that is not (the end of what was written),
  // or when `apply` returns false (the record cannot be trusted; see
  // Store::apply_wal_record). Appends then continue after the last record
  // applied. Returns the number of records applied; an error of `apply`
  // stops the replay and is returned.
  Result<uint64_t> replay(const std::function<Result<bool>(uint64_t lsn, std::string_view payload)>& apply);

  // Starts generation `generation`: the header is rewritten and flushed, and
  // records are appended from the start of the file again.
  Status start(uint64_t generation);

  // Appends one record (not flushed). ENOSPC and EIO are returned as they
  // are; the file is then as before (a later append overwrites the bytes).
  Status append(std::string_view payload);

  // Makes every record appended before the call durable. Concurrent callers
  // share flushes (group commit): one fdatasync at a time, and a caller whose
  // records a flush covered while it waited returns without one. Tops up the
  // zeros ahead of the tail first.
  Status sync();

  // Bytes of records appended since start() (checkpoint trigger).
  uint64_t bytes_since_start() const { return tail_.load(std::memory_order_relaxed) - kWalHeaderSize; }

 private:
  Wal(std::string path, FileIo& io, int fd, std::string uuid) : path_(std::move(path)), io_(io), fd_(fd), uuid_(std::move(uuid)) {}
  Status read_header();
  std::string header(uint64_t generation) const;
  void top_up_reserve();  // requires mu_

  const std::string path_;
  FileIo& io_;
  const int fd_;
  const std::string uuid_;
  uint64_t generation_ = 0;
  uint64_t next_lsn_ = 1;                // requires the store's writer lock
  std::atomic<uint64_t> tail_{kWalHeaderSize};  // next record's offset
  std::mutex mu_;                        // appends and the reserve
  uint64_t reserved_end_ = 0;            // zeros written up to here (requires mu_)
  std::mutex sync_mu_;                   // one fdatasync at a time
  std::atomic<uint64_t> appended_{0};    // records ever appended by this process
  std::atomic<uint64_t> synced_{0};      // appended_ as of the last completed flush
};

}  // namespace roam
