#include "fusefs/gc/compact.h"

#include <xxhash.h>

#include <map>

#include "fusefs/store/codec.h"

namespace roam::gc_detail {

namespace {

struct LiveBlob {
  uint64_t id;
  Blob blob;
};

struct Scan {
  std::map<uint32_t, std::vector<LiveBlob>> live;  // by segment
  uint64_t highest_blob = 0;                       // blobs above it were committed after the scan
};

Result<Scan> scan_blobs(Store& store) {
  Scan scan;
  ROAM_TRY(store.checkpoint());  // a scan of every blob: the snapshot, with the latest changes
  ROAM_ASSIGN(ReadTxn txn, store.begin_snapshot());
  ROAM_TRY(txn.scan_table(txn.dbis().blobs, {}, [&](std::string_view key, std::string_view value) -> Status {
    ROAM_ASSIGN(Blob b, decode_blob(value));
    const uint64_t id = codec::get_be64(key);
    scan.highest_blob = std::max(scan.highest_blob, id);
    if (b.refs > 0) scan.live[b.segment].push_back({id, b});
    return Status::ok();
  }));
  return scan;
}

uint64_t bytes_of(const std::vector<LiveBlob>& blobs) {
  uint64_t n = 0;
  for (const auto& b : blobs) n += b.blob.length;
  return n;
}

struct Move {
  uint64_t id;
  Blob from;
  SegmentLocation to;
};

// Copies the live blobs of one segment to the current segment, verifying each
// on the way (a damaged blob stops the move: its segment is kept, so nothing
// is lost that scrub can still report). Runs without the writer lock.
Result<std::vector<Move>> copy_out(Store& store, const std::vector<LiveBlob>& blobs, PendingAppends& pending,
                                   GcReport& report) {
  std::vector<Move> moves;
  std::string buf;
  for (const auto& lb : blobs) {
    buf.resize(lb.blob.length);
    ROAM_TRY(store.segments().read({lb.blob.segment, lb.blob.offset}, buf.data(), buf.size()));
    if (XXH3_64bits(buf.data(), buf.size()) != lb.blob.xxh3) {
      report.problems.push_back("blob " + std::to_string(lb.id) + " in segment " + std::to_string(lb.blob.segment) +
                                " fails its checksum; the segment is kept (run roamctl scrub)");
      return std::vector<Move>{};
    }
    ROAM_ASSIGN(SegmentLocation to, store.segments().append(buf));
    pending.add(to);
    moves.push_back({lb.id, lb.blob, to});
    report.bytes_moved += buf.size();
  }
  return moves;
}

// Points each moved blob at its copy, unless it changed meanwhile (freed).
Status repoint(Store& store, const std::vector<Move>& moves, size_t batch) {
  for (size_t i = 0; i < moves.size();) {
    ROAM_ASSIGN(WriteTxn txn, store.begin_write());
    for (size_t n = 0; n < batch && i < moves.size(); ++n, ++i) {
      const Move& m = moves[i];
      ROAM_ASSIGN(auto v, txn.raw().get(txn.dbis().blobs, codec::be64(m.id)));
      if (!v) continue;
      ROAM_ASSIGN(Blob now, decode_blob(*v));
      if (now.refs == 0 || now.segment != m.from.segment || now.offset != m.from.offset) continue;
      now.segment = m.to.segment;
      now.offset = m.to.offset;
      ROAM_TRY(txn.put(txn.dbis().blobs, codec::be64(m.id), encode(now)));
    }
    ROAM_TRY(txn.commit());
  }
  return Status::ok();
}

// Retires the segment if nothing can still need it. Holds the writer lock so
// that no blob commits into it while it checks; the file is deleted after.
Result<bool> retire_if_unused(Store& store, uint32_t segment, uint64_t highest_scanned) {
  ROAM_ASSIGN(WriteTxn txn, store.begin_write());
  ROAM_ASSIGN(auto cur, lmdb::Cursor::open(txn.raw(), txn.dbis().blobs));
  ROAM_ASSIGN(auto e, cur.seek(codec::be64(highest_scanned + 1)));
  for (; e; ) {
    ROAM_ASSIGN(Blob b, decode_blob(e->value));
    if (b.segment == segment && b.refs > 0) return false;  // a write that was in flight during the scan
    ROAM_ASSIGN(e, cur.next());
  }
  Status s = store.segments().retire(segment);
  if (s.err() == EBUSY) return false;  // an append into it is still pending
  ROAM_TRY(std::move(s));
  return true;
}

}  // namespace

Status free_blobs(WriteTxn& txn, const std::vector<uint64_t>& ids, GcReport& report) {
  const uint64_t highest = txn.counters().next_blob - 1;  // kept: the next id derives from it
  for (uint64_t id : ids) {
    ROAM_ASSIGN(Blob b, txn.blob(id));
    report.bytes_freed += b.length;
    ++report.blobs_freed;
    if (id != highest) ROAM_TRY(txn.del(txn.dbis().blobs, codec::be64(id)));
  }
  return Status::ok();
}

Status compact_segments(Store& store, const GcOptions& options, GcReport& report) {
  ROAM_ASSIGN(Scan scan, scan_blobs(store));
  auto sizes = store.segments().sizes();
  const uint32_t current = store.segments().current();
  auto worth_compacting = [&](uint32_t id, uint64_t size) {
    return static_cast<double>(bytes_of(scan.live[id])) < options.compact_below * static_cast<double>(size);
  };
  // A current segment that is mostly garbage is sealed so it can go too.
  if (sizes.count(current) && sizes[current] >= (1u << 20) && worth_compacting(current, sizes[current])) {
    ROAM_TRY(store.segments().roll());
    sizes = store.segments().sizes();
  }
  const uint32_t sealed_below = store.segments().current();
  for (const auto& [id, size] : sizes) {
    if (id >= sealed_below || !worth_compacting(id, size)) continue;
    PendingAppends pending(store.segments());
    ROAM_ASSIGN(auto moves, copy_out(store, scan.live[id], pending, report));
    if (moves.size() != scan.live[id].size()) continue;  // damaged: keep it
    ROAM_TRY(repoint(store, moves, options.batch));
    // The copies and their new locations are in LMDB before the segment
    // goes: no WAL record then names a blob in it.
    ROAM_TRY(store.checkpoint());
    ROAM_ASSIGN(bool retired, retire_if_unused(store, id, scan.highest_blob));
    if (!retired) continue;
    ROAM_TRY(store.segments().delete_retired(id));  // outside the writer lock: freeing blocks takes time
    ++report.segments_removed;
  }
  return Status::ok();
}

}  // namespace roam::gc_detail
