#include "fusefs/gc/gc.h"

#include <sys/stat.h>

#include <algorithm>
#include <climits>
#include <mutex>

#include "fusefs/gc/compact.h"
#include "fusefs/gc/pins.h"
#include "fusefs/oplog/oplog.h"
#include "fusefs/store/codec.h"
#include "fusefs/store/volume.h"

namespace roam {

namespace {

// The blobs the current files use, sorted.
Result<std::vector<uint64_t>> live_blobs(const StoreTxn& txn) {
  std::vector<uint64_t> out;
  uint64_t ino = 0;
  bool live = false;
  ROAM_TRY(txn.scan_table(txn.dbis().extents, {}, [&](std::string_view key, std::string_view value) -> Status {
    if (key.size() != 16) return Status::corrupt("malformed extent key");
    const uint64_t k = codec::get_be64(key);
    if (k != ino) {
      ino = k;
      ROAM_ASSIGN(auto inode, txn.get_inode(ino));
      live = inode && inode->nlink > 0;
    }
    if (!live) return Status::ok();
    ROAM_ASSIGN(Extent e, decode_extent(codec::get_be64(key, 8), value));
    out.push_back(e.blob);
    return Status::ok();
  }));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// Notes that space pressure dropped history, and from when it is kept.
Status note_pressure_trim(WriteTxn& txn, int64_t now_ns) {
  ROAM_ASSIGN(auto bounds, oplog::seq_bounds(txn));
  PressureTrim trim{now_ns, 0};
  if (bounds) {
    ROAM_ASSIGN(auto oldest, oplog::get(txn, bounds->first));
    if (oldest) trim.kept_from_ns = oldest->ts_ns;
  }
  return save_pressure_trim(txn, trim);
}

// What the records just dropped held of removed files: the size of each
// removed inode they named that no retained record names any more (step 2
// frees it). Space pressure counts it as freed, so that it drops no more
// history than the space it wants.
Result<uint64_t> removed_bytes_released(const StoreTxn& txn, const std::vector<OpRecord>& records) {
  std::vector<uint64_t> inos;
  for (const OpRecord& r : records)
    for (uint64_t ino : oplog::indexed_inodes(r)) inos.push_back(ino);
  std::sort(inos.begin(), inos.end());
  inos.erase(std::unique(inos.begin(), inos.end()), inos.end());
  uint64_t bytes = 0;
  for (uint64_t ino : inos) {
    ROAM_ASSIGN(auto inode, txn.get_inode(ino));
    if (!inode || inode->nlink != 0) continue;
    ROAM_ASSIGN(bool logged, oplog::has_records(txn, ino));
    if (!logged) bytes += inode->size;
  }
  return bytes;
}

// What step 1 may drop: by retention (age, space cap), and under space
// pressure what is older than the minimum window until `wanted` bytes went.
struct ExpiryRule {
  int64_t cutoff_ns;       // older than this: past the age limit
  uint64_t cap;            // history above this: over the space cap (0: none)
  int64_t window_start_ns; // under pressure, never this or newer
  uint64_t wanted;         // bytes space pressure wants back (0: none)
  std::optional<uint64_t> pinned;  // a past view reads what follows this seq
};

// How many of `records` (the oldest, in order) are due.
size_t due_records(const std::vector<OpRecord>& records, const ExpiryRule& rule, uint64_t history, uint64_t released) {
  const bool over_cap = rule.cap > 0 && history > rule.cap;
  const bool pressed = released < rule.wanted;
  size_t due = 0;
  while (due < records.size()) {
    const OpRecord& r = records[due];
    const bool by_retention = r.ts_ns < rule.cutoff_ns || over_cap;
    const bool by_pressure = pressed && r.ts_ns < rule.window_start_ns;
    if (!(by_retention || by_pressure) || (rule.pinned && r.seq > *rule.pinned)) break;
    ++due;
  }
  return due;
}

// Step 1: drop records, oldest first, while retention or space pressure
// says so (a chunk of the log, fusefs/oplog/chunk.h, at a time).
Status expire_records(Store& store, const ExpiryRule& rule, const GcOptions& options, GcReport& report) {
  uint64_t history = report.before.history_bytes, released = 0;
  for (bool done = false; !done;) {
    ROAM_ASSIGN(WriteTxn txn, store.begin_write());
    size_t work = 0;
    while (work < options.batch) {
      // Under pressure the newest record may go too: it may be the unlink
      // that keeps a removed file's data (drop_oldest keeps its seq).
      ROAM_ASSIGN(auto records, oplog::oldest_droppable(txn, rule.wanted > released));
      const size_t due = records ? due_records(*records, rule, history, released) : 0;
      if (due == 0) {
        done = true;
        break;
      }
      records->resize(due);
      ROAM_TRY(oplog::drop_oldest(txn, *records));
      ROAM_ASSIGN(auto unreferenced, txn.apply_refs_now());
      const uint64_t freed_before = report.bytes_freed;
      ROAM_TRY(gc_detail::free_blobs(txn, unreferenced, report));
      history -= std::min(history, report.bytes_freed - freed_before);
      released += report.bytes_freed - freed_before;
      if (rule.wanted > 0) {
        ROAM_ASSIGN(uint64_t removed, removed_bytes_released(txn, *records));
        released += removed;
        report.pressure_dropped += records->size();
      }
      report.records_dropped += records->size();
      work += records->size() + unreferenced.size();  // records that held many blocks weigh more
    }
    if (done && report.pressure_dropped > 0) ROAM_TRY(note_pressure_trim(txn, options.now_ns));
    ROAM_TRY(txn.commit());
  }
  return Status::ok();
}

// Frees up to `budget` extents of removed file `ino`, and the file itself once
// it has none left; true when `ino` needs no more work (freed, or not free-able
// after all: checked again under the writer lock, since an open handle may
// have written to it). The highest inode keeps its row (the next number
// derives from it; format.h), with no data: a removed file written last
// would otherwise hold its space until another file is created.
Result<bool> free_some_of(WriteTxn& txn, uint64_t ino, const GcOptions& options, size_t& budget, GcReport& report) {
  ROAM_ASSIGN(auto inode, txn.get_inode(ino));
  if (!inode || inode->nlink != 0 || (options.is_open && options.is_open(ino))) return true;
  ROAM_ASSIGN(bool logged, oplog::has_records(txn, ino));
  if (logged) return true;
  ROAM_ASSIGN(auto extents, txn.extents_in(ino, 0, UINT64_MAX));
  const size_t n = std::min(extents.size(), budget);
  for (size_t k = 0; k < n; ++k) {
    ROAM_TRY(txn.del(txn.dbis().extents, extent_key(ino, extents[k].file_offset)));
    txn.ref_blob(extents[k].blob, -1);
  }
  budget -= n;
  if (n < extents.size()) return false;  // more next transaction
  if (ino == txn.counters().next_ino - 1) return true;
  ROAM_ASSIGN(auto names, txn.list_xattrs(ino));
  for (const auto& name : names) ROAM_TRY(txn.del_xattr(ino, name));
  ROAM_TRY(txn.del(txn.dbis().inodes, inode_key(ino)));
  ++report.inodes_freed;
  budget = budget > 0 ? budget - 1 : 0;
  return true;
}

// Step 2 (and 3 for their data): removed files that nothing needs any more.
Status free_removed_files(Store& store, const GcOptions& options, GcReport& report) {
  std::vector<uint64_t> candidates;
  {
    // A long scan: the checkpoint (made by collect_garbage), without a lock.
    ROAM_ASSIGN(ReadTxn txn, store.begin_snapshot());
    ROAM_TRY(txn.scan_table(txn.dbis().inodes, {}, [&](std::string_view key, std::string_view value) -> Status {
      const uint64_t ino = codec::get_be64(key);
      if (ino == kRootIno) return Status::ok();
      ROAM_ASSIGN(Inode inode, decode_inode(ino, value));
      if (inode.nlink == 0) candidates.push_back(ino);
      return Status::ok();
    }));
  }
  // Each transaction does at most `batch` units of work (an inode, or one of
  // its extents), so a removed 2 GiB file goes over many short transactions.
  for (size_t i = 0; i < candidates.size();) {
    ROAM_ASSIGN(WriteTxn txn, store.begin_write());
    size_t budget = options.batch;
    while (budget > 0 && i < candidates.size()) {
      const uint64_t ino = candidates[i];
      ROAM_ASSIGN(bool done, free_some_of(txn, ino, options, budget, report));
      if (done) ++i;
    }
    ROAM_ASSIGN(auto unreferenced, txn.apply_refs_now());
    ROAM_TRY(gc_detail::free_blobs(txn, unreferenced, report));
    ROAM_TRY(txn.commit());
  }
  return Status::ok();
}

// Bytes space pressure wants back: how far the volume's free space is under
// its mark (0: not under pressure, or the volume cannot be measured).
uint64_t space_wanted(Store& store, const GcOptions& options) {
  auto space = volume_space(store.dir());
  if (!space) return 0;
  const uint64_t mark = options.pressure_mark.value_or(pressure_mark(space->total));
  return space->avail < mark ? mark - space->avail : 0;
}

}  // namespace

Result<SpaceUsage> space_usage(Store& store) {
  SpaceUsage u;
  u.segment_bytes = store.segments().bytes_used();
  ROAM_TRY(store.checkpoint());  // a scan of every blob: the snapshot, with the latest changes
  ROAM_ASSIGN(ReadTxn txn, store.begin_snapshot());
  ROAM_ASSIGN(auto live, live_blobs(txn));
  ROAM_TRY(txn.scan_table(txn.dbis().blobs, {}, [&](std::string_view key, std::string_view value) -> Status {
    ROAM_ASSIGN(Blob b, decode_blob(value));
    if (b.refs == 0) return Status::ok();
    const bool is_live = std::binary_search(live.begin(), live.end(), codec::get_be64(key));
    (is_live ? u.live_bytes : u.history_bytes) += b.length;
    return Status::ok();
  }));
  ROAM_ASSIGN(auto bounds, oplog::seq_bounds(txn));
  if (bounds) {
    u.records = bounds->second - bounds->first + 1;
    ROAM_ASSIGN(auto oldest, oplog::get(txn, bounds->first));
    if (oldest) u.oldest_ns = oldest->ts_ns;
  }
  return u;
}

Result<GcReport> collect_garbage(Store& store, const GcOptions& options) {
  std::lock_guard one_at_a_time(store.gc_mutex());
  GcReport report;
  Retention retention;
  {
    ROAM_ASSIGN(ReadTxn txn, store.begin_read());
    ROAM_ASSIGN(retention, load_retention(txn));
  }
  if (options.measure || retention.max_history_bytes > 0) {  // the space cap needs the history size
    ROAM_ASSIGN(report.before, space_usage(store));
  }
  ExpiryRule rule{retention.max_age_ns > 0 ? options.now_ns - retention.max_age_ns : INT64_MIN,
                  retention.max_history_bytes, options.now_ns - retention.min_window_ns,
                  space_wanted(store, options), oldest_pin(store.dir())};
  report.pressure_wanted = rule.wanted;
  ROAM_TRY(expire_records(store, rule, options, report));
  if (options.only_after_expiry && report.records_dropped == 0) return report;
  ROAM_TRY(store.checkpoint());  // the scan below reads the snapshot
  ROAM_TRY(free_removed_files(store, options, report));
  // What was freed is in LMDB before any segment goes (a WAL record of a
  // segment that is gone could not be replayed).
  ROAM_TRY(store.checkpoint());
  ROAM_TRY(gc_detail::compact_segments(store, options, report));
  ROAM_TRY(store.checkpoint());
  if (options.measure) {
    ROAM_ASSIGN(report.after, space_usage(store));
  }
  return report;
}

}  // namespace roam
