// The store's durability (store.h, docs/crash-model.md): sync() flushes the
// WAL, checkpoint() commits the root transaction to LMDB, and recovery
// replays the WAL onto the last checkpoint.
#include <fcntl.h>
#include <sys/stat.h>
#include <xxhash.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <set>
#include <vector>

#include "fusefs/store/codec.h"
#include "fusefs/store/store.h"
#include "fusefs/store/wal_format.h"

namespace roam {

namespace {

uint64_t le64_at(std::string_view s, size_t at) {
  uint64_t v = 0;
  std::memcpy(&v, s.data() + at, 8);
  return v;
}

}  // namespace

// ---- table numbers in WAL records ----

namespace {

// The tables in the order of their numbers in WAL records (docs/wal-format.md).
std::array<MDB_dbi, 9> tables_in_wal_order(const Dbis& d) {
  return {d.meta, d.inodes, d.dirents, d.links, d.xattrs, d.extents, d.blobs, d.oplog, d.log_by_ino};
}

}  // namespace

uint8_t Store::table_of(MDB_dbi dbi) const {
  const auto order = tables_in_wal_order(dbis_);
  for (uint8_t i = 0; i < order.size(); ++i)
    if (order[i] == dbi) return i;
  return static_cast<uint8_t>(WalTable::kNone);
}

Result<MDB_dbi> Store::dbi_of(uint8_t table) const {
  const auto order = tables_in_wal_order(dbis_);
  if (table >= order.size()) return Status::corrupt("WAL names table " + std::to_string(table));
  return order[table];
}

// ---- sync ----

bool Store::wal_bytes_past(uint64_t wal_bytes) const { return wal_ && wal_->bytes_since_start() > wal_bytes; }

Status Store::sync() {
  if (read_only_) return Status::ok();
  // Read the count after the WAL's: a commit counts its non-inline data
  // before it appends its record, so every record this flush may carry has
  // its data flushed first.
  const uint64_t data_commits = data_commits_.load(std::memory_order_seq_cst);
  inlined_since_sync_.store(0, std::memory_order_relaxed);  // a guide to inlining only: exactness does not matter
  if (data_commits != data_commits_synced_.load()) {
    ROAM_TRY(segments_->sync());
    uint64_t seen = data_commits_synced_.load();
    while (seen < data_commits && !data_commits_synced_.compare_exchange_weak(seen, data_commits)) {
    }
  }
  return wal_->sync();
}

// ---- checkpoint ----

Status Store::checkpoint() {
  if (read_only_) return Status::ok();
  std::lock_guard lock(mu_);
  if (writes_since_checkpoint_.load() == 0 && root_->open()) return Status::ok();
  return finish_checkpoint();
}

Status Store::finish_checkpoint() {
  // Every blob the root transaction names must be on disk before LMDB names it.
  ROAM_TRY(segments_->sync());
  data_commits_synced_.store(data_commits_.load());
  const uint64_t next = wal_generation_ + 1;
  if (root_->open()) {
    ROAM_TRY(root_->txn().put(dbis_.meta, kMetaWalGeneration, codec::be64(next)));
    Status committed = root_->commit();
    if (!committed) {
      // LMDB discarded the changes; the WAL still has them.
      if (Status r = rebuild_root(); !r) return r.with_context(committed.message());
      return committed.with_context("checkpoint");
    }
  }
  wal_generation_ = next;
  writes_since_checkpoint_.store(0);
  ROAM_TRY(root_->begin());
  // Only now, with LMDB durably at `next`: the WAL's records are all in it.
  ROAM_TRY(wal_->start(next));
  keep_lmdb_reserve();
  return Status::ok();
}

void Store::keep_lmdb_reserve() {
  // Zeros written past LMDB's last page: the pages the next checkpoint adds
  // land on space already allocated, so that a volume that filled up since
  // can still take the changes its WAL holds (and the deletes that free it).
  MDB_envinfo info{};
  MDB_stat st{};
  if (mdb_env_info(env_.get(), &info) != 0 || mdb_env_stat(env_.get(), &st) != 0) return;
  const uint64_t used = (static_cast<uint64_t>(info.me_last_pgno) + 1) * st.ms_psize;
  const uint64_t want = used + kLmdbReserve;
  const std::string path = dir_ + "/data.mdb";
  struct stat file {};
  if (::stat(path.c_str(), &file) != 0 || static_cast<uint64_t>(file.st_size) >= want - kLmdbReserve / 2) return;
  auto fd = io_->open(path, O_WRONLY, 0);
  if (!fd) return;
  static constexpr size_t kPiece = 64 * 1024;
  static const std::string kZeros(kPiece, '\0');
  for (uint64_t at = std::max<uint64_t>(used, static_cast<uint64_t>(file.st_size)); at < want; at += kPiece) {
    if (!io_->pwrite_all(*fd, kZeros.data(), kPiece, static_cast<off_t>(at))) break;  // a full disk: what fits
  }
  (void)io_->fdatasync(*fd);
  io_->close(*fd);
}

// ---- recovery ----

Status Store::rebuild_root() {
  root_->abort();
  ROAM_TRY(root_->begin());
  return wal_->replay([this](uint64_t, std::string_view payload) { return apply_wal_record(payload); })
      .take_status();
}

Status Store::recover() {
  std::lock_guard lock(mu_);
  ROAM_TRY(root_->begin());
  ROAM_ASSIGN(auto committed, root_->txn().get(dbis_.meta, kMetaWalGeneration));
  wal_generation_ = committed ? codec::get_be64(*committed) : 0;
  const uint64_t in_wal = wal_->generation();
  if (in_wal > wal_generation_) {
    return Status::corrupt("the WAL continues checkpoint " + std::to_string(in_wal) + " but LMDB holds checkpoint " +
                           std::to_string(wal_generation_) + " (data.mdb is older than the WAL)");
  }
  if (in_wal == wal_generation_) {
    ROAM_ASSIGN(uint64_t applied,
                wal_->replay([this](uint64_t, std::string_view payload) { return apply_wal_record(payload); }));
    if (applied == 0) {  // a clean close: nothing to redo
      keep_lmdb_reserve();
      return Status::ok();
    }
    std::fprintf(stderr, "roamfs: %s: replayed %llu changes from the write-ahead log\n", dir_.c_str(),
                 static_cast<unsigned long long>(applied));
    writes_since_checkpoint_.store(applied);
  }
  // in_wal < committed: a checkpoint committed LMDB but did not restart the
  // WAL; its records are all in LMDB already.
  if (Status s = finish_checkpoint(); !s) {
    // A full volume: the replayed changes stay in the root transaction and
    // the WAL, and the disk is served; a later checkpoint commits them.
    if (!root_->open()) return s;
    std::fprintf(stderr, "roamfs: %s: checkpoint after recovery failed, will retry: %s\n", dir_.c_str(),
                 s.message().c_str());
  }
  return Status::ok();
}

// One record's operations, onto the root transaction. A new blob (or a
// moved one) whose bytes are not in the record must be intact in its
// segment: if not, the kernel wrote the record back but no sync ever
// covered it (a sync flushes such data first), so neither this record nor
// any after it was promised: the replay ends before it (false).
Result<bool> Store::apply_wal_record(std::string_view payload) {
  struct Op {
    WalOp op;
    uint8_t table;
    std::string_view key, value;
  };
  std::vector<Op> ops;
  codec::Reader r(payload);
  while (!r.at_end()) {
    Op o{static_cast<WalOp>(r.byte()), r.byte(), r.bytes(), {}};
    if (o.op != WalOp::kDel) o.value = r.bytes();
    if (!r.ok()) return Status::corrupt("malformed WAL record");
    ops.push_back(o);
  }
  lmdb::Txn& txn = root_->txn();
  std::set<std::pair<uint32_t, uint64_t>> inline_at;
  for (const Op& o : ops) {
    if (o.op == WalOp::kData) {
      if (o.key.size() != 16) return Status::corrupt("malformed WAL data location");
      inline_at.emplace(static_cast<uint32_t>(le64_at(o.key, 0)), le64_at(o.key, 8));
    }
  }
  for (const Op& o : ops) {
    if (o.op != WalOp::kPut || o.table != static_cast<uint8_t>(WalTable::kBlobs)) continue;
    ROAM_ASSIGN(Blob b, decode_blob(o.value));
    ROAM_ASSIGN(auto old_value, txn.get(dbis_.blobs, o.key));
    if (old_value) {
      ROAM_ASSIGN(Blob old, decode_blob(*old_value));
      if (old.segment == b.segment && old.offset == b.offset) continue;  // a reference count
    }
    if (inline_at.count({b.segment, b.offset})) continue;
    std::string data(b.length, '\0');
    if (!segments_->read({b.segment, b.offset}, data.data(), data.size()) ||
        XXH3_64bits(data.data(), data.size()) != b.xxh3)
      return false;
  }
  for (const Op& o : ops) ROAM_TRY(apply_wal_op(o.op, o.table, o.key, o.value));
  return true;
}

Status Store::apply_wal_op(WalOp op, uint8_t table, std::string_view key, std::string_view value) {
  if (op == WalOp::kData)
    return segments_->restore({static_cast<uint32_t>(le64_at(key, 0)), le64_at(key, 8)}, value);
  lmdb::Txn& txn = root_->txn();
  ROAM_ASSIGN(MDB_dbi dbi, dbi_of(table));
  switch (op) {
    case WalOp::kPut:
    case WalOp::kPutDup:
      return txn.put(dbi, key, value);
    case WalOp::kAppend: {
      ROAM_ASSIGN(auto old, txn.get(dbi, key));
      if (!old) return Status::corrupt("WAL appends to a missing value");
      return txn.put(dbi, key, std::string(*old) + std::string(value));
    }
    case WalOp::kDel:
      return txn.del(dbi, key).take_status();
    case WalOp::kDelDup:
      return txn.del(dbi, key, value).take_status();
    default:
      return Status::corrupt("unknown WAL operation " + std::to_string(static_cast<int>(op)));
  }
}

}  // namespace roam
