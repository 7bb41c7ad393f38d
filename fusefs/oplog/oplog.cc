#include "fusefs/oplog/oplog.h"

#include <algorithm>
#include <ctime>

#include "fusefs/oplog/chunk.h"
#include "fusefs/store/codec.h"

namespace roam::oplog {

namespace {

int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// The chunk holding `seq`; nullopt when none does. Leaves `cur` on it.
Result<std::optional<Chunk>> chunk_holding(lmdb::Cursor& cur, uint64_t seq) {
  using Found = std::optional<Chunk>;
  ROAM_ASSIGN(auto e, cur.seek(codec::be64(seq)));
  if (!e || codec::get_be64(e->key) != seq) {
    ROAM_ASSIGN(e, e ? cur.prev() : cur.seek_last());
  }
  if (!e) return Found{};
  ROAM_ASSIGN(Chunk c, Chunk::parse(codec::get_be64(e->key), e->value));
  if (!c.holds(seq)) return Found{};
  return Found{std::move(c)};
}

Result<std::optional<Chunk>> newest_chunk(lmdb::Cursor& cur) {
  using Found = std::optional<Chunk>;
  ROAM_ASSIGN(auto e, cur.seek_last());
  if (!e) return Found{};
  ROAM_ASSIGN(Chunk c, Chunk::parse(codec::get_be64(e->key), e->value));
  return Found{std::move(c)};
}

Status remember_last(WriteTxn& txn, const OpRecord& newest) {
  return txn.put(txn.dbis().meta, kMetaOplogLast, codec::be64(newest.seq) + codec::be64(static_cast<uint64_t>(newest.ts_ns)));
}

bool matches(const Filter& f, const OpRecord& r) {
  if (f.since_ns && r.ts_ns < *f.since_ns) return false;
  if (f.until_ns && r.ts_ns > *f.until_ns) return false;
  if (f.kind && r.kind != *f.kind) return false;
  if (f.path && !path_within(r.path, *f.path) && !path_within(r.path2, *f.path)) return false;
  return true;
}

// Visits the records of `filter.ino` through the per-inode index.
Status scan_inode(const StoreTxn& txn, const Filter& filter, const std::function<bool(const OpRecord&)>& visit) {
  uint64_t from = 0;
  if (filter.since_ns) {
    ROAM_ASSIGN(from, first_seq_at(txn, *filter.since_ns));
  }
  ROAM_ASSIGN(InodeRecords seqs, InodeRecords::open(txn, *filter.ino, from));
  RecordReader records(txn);
  size_t seen = 0;
  for (;;) {
    ROAM_ASSIGN(auto seq, seqs.next());
    if (!seq) break;
    ROAM_ASSIGN(auto rec, records.get(*seq));
    if (!rec) return Status::corrupt("log index names missing record " + std::to_string(*seq));
    if (filter.until_ns && rec->ts_ns > *filter.until_ns) break;
    if (matches(filter, *rec) && (!visit(*rec) || ++seen >= filter.limit)) break;
  }
  return Status::ok();
}

}  // namespace

bool path_within(std::string_view path, std::string_view prefix) {
  if (prefix == "/" ) return !path.empty();
  if (path.size() < prefix.size() || path.substr(0, prefix.size()) != prefix) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

std::vector<uint64_t> indexed_inodes(const OpRecord& rec) {
  std::vector<uint64_t> inos{rec.ino, rec.ino2};
  // Every inode whose state the record holds a before-image of, so that the
  // state of any key at a past seq is found through its inode's index.
  for (const InodeBefore& b : rec.inodes_before) inos.push_back(b.ino);
  for (const auto& d : rec.dirents_before) inos.push_back(d.parent);
  for (const auto& x : rec.xattrs_before) inos.push_back(x.ino);
  for (const auto& d : rec.data_before) inos.push_back(d.ino);
  std::sort(inos.begin(), inos.end());
  inos.erase(std::unique(inos.begin(), inos.end()), inos.end());
  if (!inos.empty() && inos.front() == 0) inos.erase(inos.begin());
  return inos;
}

Result<InodeRecords> InodeRecords::open(const StoreTxn& txn, uint64_t ino, uint64_t from_seq) {
  const Dbis& d = txn.dbis();
  if (d.v1_log_ino) {
    // A writer may have upgraded the store since it was opened: LMDB would
    // then read the dropped table as empty, and the past as the present.
    ROAM_ASSIGN(auto still, txn.raw().get(d.main, "log_ino"));
    if (!still) {
      return Status::error(ESTALE, "the store was upgraded to format " + std::to_string(kFormatVersion) +
                                       " since it was opened read-only; open it again");
    }
  }
  ROAM_ASSIGN(auto cur, lmdb::Cursor::open(txn.raw(), d.v1_log_ino ? *d.v1_log_ino : d.log_by_ino));
  return InodeRecords(std::move(cur), ino, from_seq, d.v1_log_ino.has_value());
}

Result<std::optional<uint64_t>> InodeRecords::next() {
  using Seq = std::optional<uint64_t>;
  if (done_) return Seq{};
  std::optional<lmdb::Cursor::Entry> e;
  if (v1_) {
    ROAM_ASSIGN(e, started_ ? cur_.next() : cur_.seek(codec::be64_pair(ino_, from_seq_)));
  } else {
    ROAM_ASSIGN(e, started_ ? cur_.next_value() : cur_.seek_value(codec::be64(ino_), codec::be64(from_seq_)));
  }
  started_ = true;
  if (v1_ && e && e->key.size() == 16 && codec::get_be64(e->key) == ino_) return Seq{codec::get_be64(e->key, 8)};
  if (!v1_ && e && e->value.size() == 8) return Seq{codec::get_be64(e->value)};
  done_ = true;
  return Seq{};
}

Result<bool> has_records(const StoreTxn& txn, uint64_t ino) {
  ROAM_ASSIGN(InodeRecords seqs, InodeRecords::open(txn, ino));
  ROAM_ASSIGN(auto first, seqs.next());
  return first.has_value();
}

Result<std::optional<std::vector<OpRecord>>> oldest_droppable(const StoreTxn& txn, bool with_newest) {
  using Found = std::optional<std::vector<OpRecord>>;
  ROAM_ASSIGN(auto cur, lmdb::Cursor::open(txn.raw(), txn.dbis().oplog));
  ROAM_ASSIGN(auto e, cur.first());
  if (!e) return Found{};
  ROAM_ASSIGN(Chunk c, Chunk::parse(codec::get_be64(e->key), e->value));
  ROAM_ASSIGN(auto after, cur.next());
  const uint64_t last = after || with_newest ? c.last() : c.last() - 1;  // the newest chunk keeps the newest record
  std::vector<OpRecord> records;
  for (uint64_t seq = c.first(); seq <= last && c.holds(seq); ++seq) {  // holds: a chunk keyed 0 is damage
    ROAM_ASSIGN(OpRecord r, c.record(seq));
    records.push_back(std::move(r));
  }
  if (records.empty()) return Found{};
  return Found{std::move(records)};
}

Status drop_oldest(WriteTxn& txn, const std::vector<OpRecord>& records) {
  const Dbis& d = txn.dbis();
  if (records.empty()) return Status::invalid("no records to drop");
  ROAM_ASSIGN(auto cur, lmdb::Cursor::open(txn.raw(), d.oplog));
  ROAM_ASSIGN(auto oldest, cur.first());
  const uint64_t first = records.front().seq, last = records.back().seq;
  if (!oldest || codec::get_be64(oldest->key) != first) {
    return Status::invalid("only the oldest records of the op log are dropped");
  }
  ROAM_ASSIGN(Chunk c, Chunk::parse(first, oldest->value));
  if (!c.holds(last) || records.size() != last - first + 1) {
    return Status::invalid("the records dropped are the first ones of the oldest chunk, in order");
  }
  std::vector<OpRecord> kept;  // the chunk's records after `last`, written back
  for (uint64_t seq = last + 1; seq <= c.last(); ++seq) {
    ROAM_ASSIGN(OpRecord r, c.record(seq));
    kept.push_back(std::move(r));
  }
  if (kept.empty()) {
    ROAM_ASSIGN(auto after, cur.next());
    if (!after) ROAM_TRY(remember_last(txn, records.back()));  // the log is left empty
  }
  for (const OpRecord& rec : records) {
    const std::string seq = codec::be64(rec.seq);
    for (uint64_t ino : indexed_inodes(rec)) ROAM_TRY(txn.del(d.log_by_ino, codec::be64(ino), seq));
    for (const DataBefore& r : rec.data_before)
      for (const Extent& e : r.extents) txn.ref_blob(e.blob, -1);
  }
  ROAM_ASSIGN(bool found, txn.del(d.oplog, codec::be64(first)));
  if (!found) return Status::corrupt("op log chunk " + std::to_string(first) + " vanished while being dropped");
  if (!kept.empty()) ROAM_TRY(txn.put(d.oplog, codec::be64(last + 1), Chunk::encode(kept)));
  return Status::ok();
}

Result<std::optional<std::pair<uint64_t, int64_t>>> last_dropped(const StoreTxn& txn) {
  using Found = std::optional<std::pair<uint64_t, int64_t>>;
  ROAM_ASSIGN(auto v, txn.raw().get(txn.dbis().meta, kMetaOplogLast));
  if (!v) return Found{};
  if (v->size() != 16) return Status::corrupt("meta oplog_last is malformed");
  return Found{{codec::get_be64(*v), static_cast<int64_t>(codec::get_be64(*v, 8))}};
}

Status append(WriteTxn& txn, OpRecord& rec) {
  const Dbis& d = txn.dbis();
  {
    ROAM_ASSIGN(auto log, lmdb::Cursor::open(txn.raw(), d.oplog));
    ROAM_ASSIGN(auto newest, newest_chunk(log));
    if (newest) {
      rec.seq = newest->last() + 1;
      rec.ts_ns = std::max(now_ns(), newest->last_ts() + 1);
    } else {
      ROAM_ASSIGN(auto dropped, last_dropped(txn));
      rec.seq = dropped ? dropped->first + 1 : 1;
      rec.ts_ns = dropped ? std::max(now_ns(), dropped->second + 1) : now_ns();
    }
    std::optional<std::string> grown;
    if (newest) {
      ROAM_ASSIGN(grown, newest->appended(rec));
    }
    if (grown) {
      ROAM_TRY(txn.put(d.oplog, codec::be64(newest->first()), *grown));
    } else {
      ROAM_TRY(txn.put(d.oplog, codec::be64(rec.seq), Chunk::encode({rec}), MDB_APPEND));
    }
  }
  const std::string seq = codec::be64(rec.seq);
  ROAM_ASSIGN(auto cur, lmdb::Cursor::open(txn.raw(), d.log_by_ino));
  for (uint64_t ino : indexed_inodes(rec)) {
    // The newest record sorts after the inode's other values: appending
    // leaves its pages full (an insert would split them in half). Only a
    // damaged index could hold a later one; then it is a plain insert.
    const std::string key = codec::be64(ino);
    ROAM_ASSIGN(auto at, cur.seek_key(key));
    bool last = true;
    if (at) {
      ROAM_ASSIGN(auto newest, cur.last_value());
      last = !newest || newest->value.size() != 8 || codec::get_be64(newest->value) < rec.seq;
    }
    ROAM_TRY(txn.put(d.log_by_ino, key, seq, last ? MDB_APPENDDUP : 0));
  }
  return Status::ok();
}

Result<std::optional<OpRecord>> get(const StoreTxn& txn, uint64_t seq) { return RecordReader(txn).get(seq); }

Result<std::optional<OpRecord>> RecordReader::get(uint64_t seq) {
  if (!chunk_ || !chunk_->holds(seq)) {
    // A cursor only for this lookup: LMDB frees the cursors of a write
    // transaction when it ends, so one kept here would be freed twice by
    // a reader that outlives the commit.
    ROAM_ASSIGN(auto cur, lmdb::Cursor::open(txn_.raw(), txn_.dbis().oplog));
    ROAM_ASSIGN(chunk_, chunk_holding(cur, seq));
    if (!chunk_) return std::optional<OpRecord>{};
  }
  ROAM_ASSIGN(OpRecord rec, chunk_->record(seq));
  return std::optional<OpRecord>{std::move(rec)};
}

Result<std::optional<std::pair<uint64_t, uint64_t>>> seq_bounds(const StoreTxn& txn) {
  using Bounds = std::optional<std::pair<uint64_t, uint64_t>>;
  ROAM_ASSIGN(auto cur, lmdb::Cursor::open(txn.raw(), txn.dbis().oplog));
  ROAM_ASSIGN(auto first, cur.first());
  if (!first) return Bounds{};
  const uint64_t oldest = codec::get_be64(first->key);
  ROAM_ASSIGN(auto newest, newest_chunk(cur));
  if (!newest) return Status::corrupt("op log has a first record but no last");
  return Bounds{{oldest, newest->last()}};
}

Result<std::optional<uint64_t>> oldest_seq(const StoreTxn& txn) {
  ROAM_ASSIGN(auto cur, lmdb::Cursor::open(txn.raw(), txn.dbis().oplog));
  ROAM_ASSIGN(auto first, cur.first());
  if (!first) return std::optional<uint64_t>{};
  return std::optional<uint64_t>{codec::get_be64(first->key)};
}

Result<uint64_t> first_seq_at(const StoreTxn& txn, int64_t since_ns) {
  ROAM_ASSIGN(auto bounds, seq_bounds(txn));
  if (!bounds) return uint64_t{1};
  ROAM_ASSIGN(auto cur, lmdb::Cursor::open(txn.raw(), txn.dbis().oplog));
  uint64_t lo = bounds->first, hi = bounds->second + 1;
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    ROAM_ASSIGN(auto chunk, chunk_holding(cur, mid));
    if (!chunk) return Status::corrupt("op log has no record " + std::to_string(mid) + " between its first and last");
    if (chunk->ts_of(mid) < since_ns) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

Status scan(const StoreTxn& txn, const Filter& filter, const std::function<bool(const OpRecord&)>& visit) {
  if (filter.ino) return scan_inode(txn, filter, visit);
  uint64_t seq = 1;
  if (filter.since_ns) {
    ROAM_ASSIGN(seq, first_seq_at(txn, *filter.since_ns));
  }
  ROAM_ASSIGN(auto bounds, seq_bounds(txn));
  if (!bounds) return Status::ok();
  seq = std::max(seq, bounds->first);
  ROAM_ASSIGN(auto cur, lmdb::Cursor::open(txn.raw(), txn.dbis().oplog));
  ROAM_ASSIGN(auto chunk, chunk_holding(cur, seq));
  size_t seen = 0;
  while (chunk) {
    for (; seq <= chunk->last(); ++seq) {
      ROAM_ASSIGN(OpRecord r, chunk->record(seq));
      if (filter.until_ns && r.ts_ns > *filter.until_ns) return Status::ok();
      if (matches(filter, r) && (!visit(r) || ++seen >= filter.limit)) return Status::ok();
    }
    ROAM_ASSIGN(auto e, cur.next());
    if (!e) break;
    ROAM_ASSIGN(Chunk next, Chunk::parse(codec::get_be64(e->key), e->value));
    if (next.first() != seq) return Status::corrupt("op log skips from record " + std::to_string(seq - 1) + " to " + std::to_string(next.first()));
    chunk = std::move(next);
  }
  return Status::ok();
}

}  // namespace roam::oplog
