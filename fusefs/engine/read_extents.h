// Reading a file's data once its extents are known: the one read path of
// the live disk and of past views (Fs::read), and of the past files
// `.history` keeps the extent maps of (fuse/history_dir.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "fusefs/store/segments.h"
#include "fusefs/store/store.h"

namespace roam {

// One extent of a read and the blob it names.
struct ReadPiece {
  Extent extent;
  Blob blob;
};

// The blobs of `extents` (those of inode `ino`, in file order), looked up
// through `txn`. Corrupt when an extent overruns its blob.
Result<std::vector<ReadPiece>> read_pieces(const StoreTxn& txn, uint64_t ino, const std::vector<Extent>& extents);

// Fills buf with [offset, offset + size) of the file that `pieces` map
// (holes read as zeros), verifying the checksum of every blob it reads (EIO
// naming the place on a mismatch). Reads segments only: call it after the
// transaction that found the pieces is closed. ESTALE when compaction
// removed a segment since: look the pieces up again.
Status read_from_pieces(Segments& segments, uint64_t ino, const std::vector<ReadPiece>& pieces, uint64_t offset,
                        size_t size, char* buf);

}  // namespace roam
