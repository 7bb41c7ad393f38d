// Append-only data segment files: segments/NNNNNNNN.seg under the store.
//
// Bytes are appended and never overwritten (copy-on-write); the blob table in
// LMDB says which ranges are referenced. Bytes past the last referenced blob
// (a write that crashed before its LMDB commit) are garbage that compaction
// drops; nothing reads them.
//
// Thread safety: all methods may be called concurrently. append() reserves its
// range under `mu_` and writes outside it, so concurrent writers do not wait on
// each other's I/O. Lock order: Segments::mu_ is a leaf lock (taken after the
// store's writer mutex when both are held, never the other way round).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

#include "fusefs/store/file_io.h"
#include "fusefs/store/status.h"

namespace roam {

struct SegmentLocation {
  uint32_t segment = 0;
  uint64_t offset = 0;
};

class Segments {
 public:
  // Opens the segment files in `dir`. A writable open creates the first
  // segment if none exists; a read-only one changes nothing on disk and its
  // append() fails with EROFS. `io` must outlive this object.
  static Result<std::unique_ptr<Segments>> open(const std::string& dir, FileIo& io, bool read_only);
  ~Segments();

  // Appends `data` to the current segment, starting a new segment when the
  // current one has reached kSegmentTargetSize. On failure (ENOSPC, EIO) nothing
  // refers to the reserved range and the error is returned.
  Result<SegmentLocation> append(std::string_view data);
  // Reads `len` bytes at `loc` into `buf`.
  Status read(SegmentLocation loc, char* buf, size_t len);
  // Makes every byte appended so far durable (fdatasync of each segment written
  // since the last sync). Call before committing LMDB's metadata to disk.
  Status sync();

  // Total bytes in segment files (for statfs and roamctl df).
  uint64_t bytes_used() const;

 private:
  Segments(std::string dir, FileIo& io, bool read_only) : dir_(std::move(dir)), io_(io), read_only_(read_only) {}
  std::string path_of(uint32_t segment) const;
  Result<int> fd_of(uint32_t segment);  // requires mu_
  Status start_segment(uint32_t segment);  // requires mu_

  const std::string dir_;
  FileIo& io_;
  const bool read_only_;
  mutable std::mutex mu_;
  std::map<uint32_t, int> fds_;   // open segment files
  std::set<uint32_t> dirty_;      // written since the last sync()
  uint32_t current_ = 0;          // segment being appended to
  uint64_t tail_ = 0;             // next append offset in current_
  uint64_t sealed_bytes_ = 0;     // bytes in segments before current_
};

}  // namespace roam
