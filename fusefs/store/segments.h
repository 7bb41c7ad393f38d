// Append-only data segment files: segments/NNNNNNNN.seg under the store.
//
// Blobs are appended and never overwritten (copy-on-write; the only bytes an
// append overwrites are the reserve's zeros, below); the blob table in
// LMDB says which ranges are referenced. Bytes past the last referenced blob
// (a write that crashed before its LMDB commit) are garbage that compaction
// drops; nothing reads them.
//
// Zeros ahead of the tail (the reserve): a sync that finds the current
// segment written since the last one writes up to kSegmentReserve bytes of
// zeros past its tail, in the same flush. The appends that follow overwrite
// blocks the backing filesystem has already allocated, so the fdatasync of
// the next sync writes the data and commits no metadata (on ext4 with
// data=ordered that saves a journal commit, about 0.15 ms here, per fsync of
// a small write). The zeros are garbage like a crashed append's bytes:
// nothing refers to them, a clean close or sealing the segment truncates
// them away, and after a crash the next open resumes after them.
//
// Compaction (fusefs/gc) copies the live blobs out of a sealed segment and
// then remove()s it. A reader that looked up a blob's old location in an older
// LMDB snapshot either still holds the open file (reads succeed: the bytes stay
// until the last reader lets go) or gets ESTALE and looks the blob up again.
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
#include <vector>

#include "fusefs/store/file_io.h"
#include "base/status.h"

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
  // refers to the reserved range and the error is returned. The append counts
  // as pending (its segment cannot be removed) until settle(): the caller
  // settles once the blob that names it is committed or abandoned (use
  // PendingAppends).
  Result<SegmentLocation> append(std::string_view data);
  void settle(SegmentLocation loc);
  // Reads `len` bytes at `loc` into `buf`. ESTALE when the segment has been
  // removed by compaction (the caller re-reads the blob's location).
  Status read(SegmentLocation loc, char* buf, size_t len);
  // Makes every byte appended so far durable (fdatasync of each segment written
  // since the last sync, and of the directory when a segment was created).
  // Call before LMDB's metadata is made durable. Tops up the reserve first
  // (best effort: a full disk leaves it short and fails no sync).
  Status sync();

  // Recovery (store.h): writes `data` back at `loc`, as a WAL record holds
  // it, creating the segment file if the crash lost it and moving the
  // append position past it. Not flushed (the checkpoint after recovery
  // flushes every dirty segment).
  Status restore(SegmentLocation loc, std::string_view data);

  // Total bytes in segment files, the reserve included (for statfs and
  // roamctl df).
  uint64_t bytes_used() const;

  // Size of every segment file, by id.
  std::map<uint32_t, uint64_t> sizes() const;
  // The segment being appended to (never removable).
  uint32_t current() const;
  // Starts a new current segment (if the current one is not empty), so that
  // compaction may empty and remove the one that was current.
  Status roll();
  // Retires a sealed segment once compaction has moved every live blob out of
  // it and that move is durable: from now on a reader that still asks for it
  // gets ESTALE (readers that hold it open finish). EBUSY while an append to
  // it is pending (its blob may not be committed yet). Cheap: the caller may
  // hold the store's writer lock.
  Status retire(uint32_t segment);
  // Deletes a retired segment's file. Slow for a large file (the backing
  // filesystem frees its blocks), so called without the writer lock.
  Status delete_retired(uint32_t segment);

 private:
  // An open segment file; closed when the last user lets go of it.
  struct File {
    File(FileIo& io, int fd) : io(io), fd(fd) {}
    ~File() { io.close(fd); }
    File(const File&) = delete;
    File& operator=(const File&) = delete;
    FileIo& io;
    const int fd;
  };

  Segments(std::string dir, FileIo& io, bool read_only) : dir_(std::move(dir)), io_(io), read_only_(read_only) {}
  std::string path_of(uint32_t segment) const;
  Result<std::shared_ptr<File>> file_of(uint32_t segment);  // requires mu_
  Status start_segment(uint32_t segment);  // requires mu_
  void top_up_reserve();  // requires mu_
  // Truncates the current segment's reserve away (a clean close, or the
  // segment is being sealed). Appends in flight write below tail_, so none
  // is cut. Requires mu_.
  void drop_reserve();
  Status sync_directory();

  const std::string dir_;
  FileIo& io_;
  const bool read_only_;
  mutable std::mutex mu_;
  std::map<uint32_t, std::shared_ptr<File>> files_;  // open segment files
  std::set<uint32_t> ids_;        // every segment file that exists
  std::map<uint32_t, uint64_t> pending_;  // appends not yet settled, by segment
  std::set<uint32_t> removed_;    // removed by compaction in this process
  std::set<uint32_t> dirty_;      // written since the last sync()
  bool new_segment_ = false;      // a segment file was created since the last sync()
  uint32_t current_ = 0;          // segment being appended to
  uint64_t tail_ = 0;             // next append offset in current_
  uint64_t reserved_end_ = 0;     // zeros written in current_ up to here (the reserve, when > tail_)
  uint64_t sealed_bytes_ = 0;     // bytes in segments before current_
};

// Settles the appends it was given when it goes out of scope (after the
// caller's commit, or on any early return).
class PendingAppends {
 public:
  explicit PendingAppends(Segments& segments) : segments_(segments) {}
  ~PendingAppends() {
    for (const auto& loc : locs_) segments_.settle(loc);
  }
  PendingAppends(const PendingAppends&) = delete;
  PendingAppends& operator=(const PendingAppends&) = delete;
  void add(SegmentLocation loc) { locs_.push_back(loc); }

 private:
  Segments& segments_;
  std::vector<SegmentLocation> locs_;
};

}  // namespace roam
