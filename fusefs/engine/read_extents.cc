// Data reads from known extents (read_extents.h).
#include "fusefs/engine/read_extents.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace roam {

namespace {

// Reads the whole blob of extent `e` into `dst` (b.length bytes) and verifies
// its checksum: a blob is the unit that is checksummed.
Status read_verified(Segments& segments, uint64_t ino, const Extent& e, const Blob& b, char* dst) {
  ROAM_TRY(segments.read({b.segment, b.offset}, dst, b.length));
  if (XXH3_64bits(dst, b.length) != b.xxh3) {
    return Status::io("checksum mismatch: inode " + std::to_string(ino) + " file offset " +
                      std::to_string(e.file_offset) + " blob " + std::to_string(e.blob) + " (segment " +
                      std::to_string(b.segment) + " offset " + std::to_string(b.offset) + ")");
  }
  return Status::ok();
}

}  // namespace

Result<std::vector<ReadPiece>> read_pieces(const StoreTxn& txn, uint64_t ino, const std::vector<Extent>& extents) {
  std::vector<ReadPiece> pieces;
  pieces.reserve(extents.size());
  for (const Extent& e : extents) {
    ROAM_ASSIGN(Blob b, txn.blob(e.blob));
    if (e.blob_offset + static_cast<uint64_t>(e.length) > b.length)
      return Status::corrupt("extent of inode " + std::to_string(ino) + " overruns blob " + std::to_string(e.blob));
    pieces.push_back({e, b});
  }
  return pieces;
}

Status read_from_pieces(Segments& segments, uint64_t ino, const std::vector<ReadPiece>& pieces, uint64_t offset,
                        size_t size, char* buf) {
  const uint64_t end = offset + size;
  std::string scratch;     // a blob only partly needed is read here first
  uint64_t scratch_id = 0;  // split pieces of one blob are read once
  uint64_t filled = offset;  // buf holds [offset, filled)
  for (const auto& [e, b] : pieces) {
    const uint64_t from = std::max(e.file_offset, offset), to = std::min(e.end(), end);
    if (from >= to) continue;
    std::memset(buf + (filled - offset), 0, from - filled);  // a hole reads as zeros
    char* dst = buf + (from - offset);
    if (e.blob_offset == 0 && e.length == b.length && from == e.file_offset && to == e.end()) {
      ROAM_TRY(read_verified(segments, ino, e, b, dst));  // the common case: no copy
    } else {
      if (e.blob != scratch_id) {
        scratch.resize(b.length);
        ROAM_TRY(read_verified(segments, ino, e, b, scratch.data()));
        scratch_id = e.blob;
      }
      std::memcpy(dst, scratch.data() + e.blob_offset + (from - e.file_offset), to - from);
    }
    filled = to;
  }
  std::memset(buf + (filled - offset), 0, end - filled);
  return Status::ok();
}

}  // namespace roam
