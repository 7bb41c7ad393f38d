#include "fusefs/oplog/chunk.h"

#include "fusefs/store/codec.h"

namespace roam::oplog {

Result<Chunk> Chunk::parse(uint64_t first_seq, std::string_view value) {
  auto corrupt = [first_seq](const std::string& what) {
    return Status::corrupt("op log chunk " + std::to_string(first_seq) + ": " + what);
  };
  Chunk c;
  c.first_ = first_seq;
  c.value_ = value;
  if (!value.empty() && static_cast<uint8_t>(value[0]) == kRecordV1) {
    ROAM_ASSIGN(OpRecord r, decode_record_v1(first_seq, value));
    c.v1_ = true;
    c.entries_.push_back({value, r.ts_ns, 0});
    return c;
  }
  codec::Reader in(value);
  if (in.byte() != kChunkV2) return corrupt("unknown version");
  while (in.ok() && !in.at_end()) {
    const size_t i = c.entries_.size();
    const std::string_view bytes = in.bytes();
    if (!in.ok()) break;
    ROAM_ASSIGN(RecordHead head, decode_head(first_seq + i, bytes));
    if (i == 0 && head.same_caller) return corrupt("its first record borrows a caller");
    Entry e{bytes, head.ts, i};
    if (i > 0) {
      // Times step from the record before; unsigned, so garbage wraps instead of overflowing.
      e.ts_ns = static_cast<int64_t>(static_cast<uint64_t>(c.entries_.back().ts_ns) + static_cast<uint64_t>(head.ts));
      if (head.same_caller) e.caller_at = c.entries_.back().caller_at;
    }
    c.entries_.push_back(e);
  }
  if (!in.ok() || c.entries_.empty()) return corrupt("truncated");
  return c;
}

Result<RecordContext> Chunk::context_of(size_t i) const {
  const size_t at = entries_[i].caller_at;
  ROAM_ASSIGN(Caller caller, decode_caller(first_ + at, entries_[at].bytes));
  return RecordContext{entries_[i].ts_ns, std::move(caller)};
}

std::string Chunk::encode(const std::vector<OpRecord>& records) {
  std::string value(1, static_cast<char>(kChunkV2));
  std::string rec;
  RecordContext prev;
  for (size_t i = 0; i < records.size(); ++i) {
    rec.clear();
    encode_record(rec, records[i], i == 0 ? nullptr : &prev);
    codec::put_bytes(value, rec);
    prev = {records[i].ts_ns, records[i].caller};
  }
  return value;
}

Result<OpRecord> Chunk::record(uint64_t seq) const {
  const size_t i = seq - first_;
  if (v1_) return decode_record_v1(seq, entries_[i].bytes);
  if (i == 0) return decode_record(seq, entries_[i].bytes, nullptr);
  ROAM_ASSIGN(RecordContext prev, context_of(i - 1));
  return decode_record(seq, entries_[i].bytes, &prev);
}

Result<std::optional<std::string>> Chunk::appended(const OpRecord& r) const {
  using Grown = std::optional<std::string>;
  if (v1_) return Grown{};
  ROAM_ASSIGN(RecordContext prev, context_of(entries_.size() - 1));
  std::string rec;
  encode_record(rec, r, &prev);
  size_t length_bytes = 1;  // of the varint length before the record
  for (size_t n = rec.size(); n >= 0x80; n >>= 7) ++length_bytes;
  const size_t size = value_.size() + length_bytes + rec.size();
  if (size > kChunkBytes) return Grown{};  // checked first: the newest chunk may be a restore's megabytes
  std::string value;
  value.reserve(size);
  value.append(value_);
  codec::put_bytes(value, rec);
  return Grown{std::move(value)};
}

}  // namespace roam::oplog
