// WriteTxn's journal (store.h): the value of each key before the
// transaction first changed it, to undo; the changes themselves, as the WAL
// record that commit() appends (wal_format.h).
#include <cstring>

#include "fusefs/store/codec.h"
#include "fusefs/store/store.h"
#include "fusefs/store/wal_format.h"

namespace roam {

WriteTxn::WriteTxn(lmdb::Txn& root, Store& store, std::unique_lock<std::recursive_mutex> lock)
    : StoreTxn(&root, store.dbis_), store_(&store), root_(&root), lock_(std::move(lock)), counters_(store.counters_) {}

WriteTxn::~WriteTxn() {
  if (committed_ || !store_) return;  // committed, or moved from
  if (Status s = undo(); !s) {
    // LMDB could not take the old values back (its transaction failed
    // underneath, e.g. map full): start over from the checkpoint and the
    // WAL, which holds every committed change and none of this one's.
    if (Status r = store_->rebuild_root(); !r) {
      std::fprintf(stderr, "roamfs: cannot undo a failed change (%s) nor rebuild the store's state (%s)\n",
                   s.message().c_str(), r.message().c_str());
    }
  }
}

Status WriteTxn::remember(MDB_dbi dbi, std::string_view key) {
  if (!remembered_.emplace(dbi, std::string(key)).second) return Status::ok();
  ROAM_ASSIGN(auto old, root().get(dbi, key));
  before_.push_back({dbi, std::string(key), old ? std::optional<std::string>(std::string(*old)) : std::nullopt});
  return Status::ok();
}

void WriteTxn::log_op(uint8_t op, MDB_dbi dbi, std::string_view key, std::string_view value) {
  redo_.push_back(static_cast<char>(op));
  redo_.push_back(static_cast<char>(store_->table_of(dbi)));
  codec::put_bytes(redo_, key);
  if (op != static_cast<uint8_t>(WalOp::kDel)) codec::put_bytes(redo_, value);
}

Status WriteTxn::put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags) {
  if (dbi == dbis_.log_by_ino) {  // one (key, value) pair of a dup table
    Status s = root().put(dbi, key, value, flags | MDB_NODUPDATA);
    if (s.err() == EEXIST) return Status::ok();  // the pair is there already: nothing changed
    ROAM_TRY(std::move(s));
    before_.push_back({dbi, std::string(key), std::string(value), true, false});
    log_op(static_cast<uint8_t>(WalOp::kPutDup), dbi, key, value);
    return Status::ok();
  }
  std::optional<std::string> now;  // the value before this put, for an append
  if (flags & MDB_APPEND) {
    // The key is new (LMDB refuses the put otherwise): nothing to read.
    if (remembered_.emplace(dbi, std::string(key)).second) before_.push_back({dbi, std::string(key), std::nullopt});
  } else {
    ROAM_TRY(remember(dbi, key));
    if (dbi == dbis_.blobs) ROAM_TRY(note_if_moved(key, value));
    if (dbi == dbis_.oplog) {
      ROAM_ASSIGN(auto cur, root().get(dbi, key));
      if (cur) now = std::string(*cur);
    }
  }
  ROAM_TRY(root().put(dbi, key, value, flags));
  // The op log's newest chunk grows by appending: log only the new bytes.
  if (now && value.size() > now->size() && value.substr(0, now->size()) == *now)
    log_op(static_cast<uint8_t>(WalOp::kAppend), dbi, key, value.substr(now->size()));
  else
    log_op(static_cast<uint8_t>(WalOp::kPut), dbi, key, value);
  return Status::ok();
}

Result<bool> WriteTxn::del(MDB_dbi dbi, std::string_view key) {
  ROAM_TRY(remember(dbi, key));
  ROAM_ASSIGN(bool found, root().del(dbi, key));
  if (found) log_op(static_cast<uint8_t>(WalOp::kDel), dbi, key, {});
  return found;
}

Result<bool> WriteTxn::del(MDB_dbi dbi, std::string_view key, std::string_view value) {
  ROAM_ASSIGN(bool found, root().del(dbi, key, value));
  if (!found) return false;
  before_.push_back({dbi, std::string(key), std::string(value), true, true});
  log_op(static_cast<uint8_t>(WalOp::kDelDup), dbi, key, value);
  return true;
}

Status WriteTxn::note_if_moved(std::string_view key, std::string_view value) {
  // A blob pointed at new bytes (compaction's copy) is new data for sync():
  // the segment must be flushed before a WAL that names it.
  ROAM_ASSIGN(auto old, root().get(dbis_.blobs, key));
  if (!old) return Status::ok();
  ROAM_ASSIGN(Blob was, decode_blob(*old));
  ROAM_ASSIGN(Blob now, decode_blob(value));
  if (was.segment != now.segment || was.offset != now.offset) ++blobs_added_;
  return Status::ok();
}

void WriteTxn::note_data(SegmentLocation loc, std::string_view data) {
  data_.emplace_back(loc, data);
  data_bytes_ += data.size();
}

Status WriteTxn::undo() {
  // Newest first: a key changed twice gets its first before-image last.
  for (auto it = before_.rbegin(); it != before_.rend(); ++it) {
    const Before& b = *it;
    if (b.dup_pair) {
      if (b.existed) {
        ROAM_TRY(root().put(b.dbi, b.key, *b.value));
      } else {
        ROAM_TRY(root().del(b.dbi, b.key, *b.value).take_status());
      }
    } else if (b.value) {
      ROAM_TRY(root().put(b.dbi, b.key, *b.value));
    } else {
      ROAM_TRY(root().del(b.dbi, b.key).take_status());
    }
  }
  before_.clear();
  return Status::ok();
}

Status WriteTxn::commit() {
  if (Status s = apply_live_delta(); !s) return s;          // the destructor undoes
  if (Status s = apply_ref_deltas(nullptr); !s) return s;  // the destructor undoes
  if (redo_.empty()) {  // nothing changed: nothing to log (and live data is as it was)
    committed_ = true;
    lock_.unlock();
    return Status::ok();
  }
  // Small new data rides in the record; otherwise sync() must flush the
  // segments before a WAL that names them (counted before the append, so a
  // sync that sees the record sees the count).
  const bool inline_data = blobs_added_ == data_.size() && data_bytes_ <= kWalInlineData &&
                           store_->inlined_since_sync_.load(std::memory_order_relaxed) + data_bytes_ <= kWalInlineBudget;
  if (inline_data) {
    store_->inlined_since_sync_.fetch_add(data_bytes_, std::memory_order_relaxed);
    for (const auto& [loc, bytes] : data_) {
      redo_.push_back(static_cast<char>(WalOp::kData));
      redo_.push_back(static_cast<char>(WalTable::kNone));
      std::string where;
      codec::put_fixed64(where, loc.segment);
      codec::put_fixed64(where, loc.offset);
      codec::put_bytes(redo_, where);
      codec::put_bytes(redo_, bytes);
    }
  } else if (blobs_added_ > 0) {
    store_->data_commits_.fetch_add(1, std::memory_order_seq_cst);
  }
  ROAM_TRY(store_->wal_->append(redo_));
  committed_ = true;
  store_->counters_ = counters_;
  if (new_quota_) store_->quota_bytes_.store(*new_quota_, std::memory_order_relaxed);
  if (new_live_) store_->live_bytes_.store(*new_live_, std::memory_order_relaxed);
  store_->writes_since_checkpoint_.fetch_add(1, std::memory_order_relaxed);
  lock_.unlock();
  return Status::ok();
}

}  // namespace roam
